#ifndef TRAIL_CROCKSDB_SHIM_H
#define TRAIL_CROCKSDB_SHIM_H
#include <rocksdb/c.h>
#endif
