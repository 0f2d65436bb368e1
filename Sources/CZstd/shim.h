#ifndef TRAIL_CZSTD_SHIM_H
#define TRAIL_CZSTD_SHIM_H
#include <zstd.h>
#endif
