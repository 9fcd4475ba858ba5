/* How far a periodic timer's next expiry (`left` after `now`) is from
 * where its start and period put it, in nanoseconds (0 to period / 2):
 * shared by the programs that check a timer keeps its phase. */
#ifndef TIMER_PHASE_H
#define TIMER_PHASE_H

static long long phase_error_ns(long long start, long long now, long long left, long long period) {
    long long due = period - (now - start) % period;
    long long e = (left - due) % period;
    if (e > period / 2)
        e -= period;
    if (e < -period / 2)
        e += period;
    return e < 0 ? -e : e;
}

#endif
