#ifndef ZYK_CSYSTEMSHIM_H
#define ZYK_CSYSTEMSHIM_H
// Linux calls that need _GNU_SOURCE, which Swift's Glibc module does not expose.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <unistd.h>

/// Flushes the whole filesystem holding fd (0 on success, -1 with errno).
static inline int zyk_syncfs(int fd) {
    return syncfs(fd);
}

/// Starts write-back of a file range without waiting (0 on success, -1 with errno).
static inline int zyk_start_writeback(int fd, long long offset, long long length) {
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)offset; (void)length;
    return 0;
#endif
}
#endif
