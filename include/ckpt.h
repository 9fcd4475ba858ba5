/* ckpt.h — the C API of ckpt, for programs run under `ckpt run`.
 *
 * The functions live in libckpt_shim.so, which `ckpt run` preloads. They
 * are declared weak: a program built with this header also runs without
 * ckpt, where ckpt_checkpoint is a null pointer (see ckpt_active()).
 *
 *   #include <ckpt.h>
 *   char path[4096];
 *   switch (ckpt_active() ? ckpt_checkpoint(NULL, path, sizeof path) : -1) {
 *   case CKPT_WRITTEN:   // the image is in `path`; the program goes on
 *   case CKPT_RESTARTED: // this process was restarted from that image
 *   default:             // no checkpoint; the reason is in `path`
 *   }
 */
#ifndef CKPT_H
#define CKPT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The image was written (its path is in the buffer). */
#define CKPT_WRITTEN 0
/* The process was restarted from the image this call wrote. */
#define CKPT_RESTARTED 1
/* No checkpoint: the buffer holds why (one line). */
#define CKPT_FAILED (-1)

/* Checkpoint the calling process into `dir` (NULL: the directory given
 * to `ckpt run`). Every thread is stopped briefly; the call itself
 * returns once the image is complete and in place. The same call returns
 * a second time, with CKPT_RESTARTED, in a process restarted from that
 * image. `out` receives the image path or the error (NUL-terminated,
 * cut to `out_len`). */
__attribute__((weak)) int ckpt_checkpoint(const char *dir, char *out, size_t out_len);

/* ckpt_checkpoint with flags: CKPT_NO_WAIT returns as soon as the
 * program goes on (CKPT_WRITTEN with the path the image will have);
 * ckpt_wait() then waits until it is in place: 0 (path in `out`), -1
 * (why), 2 when no such checkpoint is pending. */
#define CKPT_NO_WAIT 1u
__attribute__((weak)) int ckpt_checkpoint_ex(const char *dir, unsigned flags, char *out, size_t out_len);
__attribute__((weak)) int ckpt_wait(char *out, size_t out_len);

/* The program's own settings, in place of `ckpt run`'s: where images go
 * (`dir`, NULL: unchanged), how many to keep (`keep`, 0: unchanged), and
 * periodic checkpoints every `interval_ms` (0: unchanged, UINT64_MAX:
 * none). 0, or -1 with the reason in `out`. */
__attribute__((weak)) int ckpt_configure(const char *dir, unsigned keep, unsigned long long interval_ms,
                                         char *out, size_t out_len);

/* Compress this process's images from now on (as `ckpt run --compress`):
 * CKPT_COMPRESS_NONE, CKPT_COMPRESS_LZ4 or CKPT_COMPRESS_ZSTD. 0, or -1
 * for a codec this ckpt does not know. */
#define CKPT_COMPRESS_NONE 0u
#define CKPT_COMPRESS_LZ4 1u
#define CKPT_COMPRESS_ZSTD 2u
__attribute__((weak)) int ckpt_set_compress(unsigned codec);

/* Hooks: `f(data)` is called before each checkpoint of this process
 * (whoever asked for it: this API, `ckpt checkpoint PID`, the periodic
 * timer), after each one in the process that goes on, and in a restored
 * process before any other of its threads goes on (reconnect what cannot
 * be saved: a server session, a device). They run on ckpt's hook thread
 * (or, around ckpt_checkpoint, on the calling thread), never in a signal
 * handler, in the order they were registered; 64 at most. Each returns 0,
 * or -1 when the hook could not be registered. */
__attribute__((weak)) int ckpt_before_checkpoint(void (*f)(void *), void *data);
__attribute__((weak)) int ckpt_after_checkpoint(void (*f)(void *), void *data);
__attribute__((weak)) int ckpt_on_restore(void (*f)(void *), void *data);

/* Times this process was restored from an image. */
__attribute__((weak)) unsigned ckpt_restored_count(void);

/* Whether the program runs under ckpt (the shim is loaded). */
static inline int ckpt_active(void) { return ckpt_checkpoint != 0; }

#ifdef __cplusplus
}
#endif

#endif
