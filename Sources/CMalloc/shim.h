#ifndef TRAIL_CMALLOC_SHIM_H
#define TRAIL_CMALLOC_SHIM_H
// glibc's malloc statistics and trimming (mallinfo2, malloc_trim), which the
// Glibc module does not export.
#include <malloc.h>
#endif
