#ifndef TRAIL_CEPOLL_SHIM_H
#define TRAIL_CEPOLL_SHIM_H
// epoll(7) for the benchmark's subscriber reader: Swift's Glibc module leaves it out.
#include <sys/epoll.h>
#endif
