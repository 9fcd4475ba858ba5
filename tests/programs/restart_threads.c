/* restart_threads CTL ROUNDS: 4 producers and 4 consumers share a bounded
 * ring (one mutex, two condition variables) and meet at a condvar barrier
 * after each round; per-slot mutexes guard a table of tallies. Invariants
 * are checked all along; the final checksum does not depend on the
 * schedule. Marker `started` after round 3. Prints one line per round and
 * the verdict. */
#include "ckpt_test.h"
#include <pthread.h>

#define NP 4
#define NC 4
#define PER_ROUND 6000 /* items per producer per round */
#define RING 64
#define TALLY 16

static unsigned long long ring[RING];
static int head, tail_, count;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;

static pthread_mutex_t bar_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bar_cv = PTHREAD_COND_INITIALIZER;
static int bar_count, bar_gen;

static pthread_mutex_t tally_mu[TALLY];
static unsigned long long tally_sum[TALLY], tally_n[TALLY];
static int rounds;
static volatile int violations;

static unsigned long long mix(unsigned long long v) {
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ULL;
    v ^= v >> 33;
    return v;
}

static void barrier(void) {
    pthread_mutex_lock(&bar_mu);
    int gen = bar_gen;
    if (++bar_count == NP + NC + 1) {
        bar_count = 0;
        bar_gen++;
        pthread_cond_broadcast(&bar_cv);
    } else {
        while (gen == bar_gen)
            pthread_cond_wait(&bar_cv, &bar_mu);
    }
    pthread_mutex_unlock(&bar_mu);
}

static void *producer(void *arg) {
    long id = (long)arg;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < PER_ROUND; i++) {
            unsigned long long item = ((unsigned long long)r << 32) | ((unsigned long long)id << 24) | (unsigned)i;
            pthread_mutex_lock(&mu);
            while (count == RING)
                pthread_cond_wait(&not_full, &mu);
            if (count < 0 || count >= RING)
                violations++;
            ring[head] = item;
            head = (head + 1) % RING;
            count++;
            pthread_cond_signal(&not_empty);
            pthread_mutex_unlock(&mu);
        }
        barrier();
        barrier();
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    for (int r = 0; r < rounds; r++) {
        int quota = NP * PER_ROUND / NC;
        for (int i = 0; i < quota; i++) {
            pthread_mutex_lock(&mu);
            while (count == 0)
                pthread_cond_wait(&not_empty, &mu);
            if (count <= 0 || count > RING)
                violations++;
            unsigned long long item = ring[tail_];
            tail_ = (tail_ + 1) % RING;
            count--;
            pthread_cond_signal(&not_full);
            pthread_mutex_unlock(&mu);
            if ((item >> 32) != (unsigned long long)r)
                violations++; /* an item of another round */
            unsigned long long h = mix(item);
            int s = (int)(h % TALLY);
            pthread_mutex_lock(&tally_mu[s]);
            tally_sum[s] += h;
            tally_n[s]++;
            pthread_mutex_unlock(&tally_mu[s]);
        }
        barrier();
        barrier();
    }
    return NULL;
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    rounds = argc > 2 ? atoi(argv[2]) : 30;
    for (int i = 0; i < TALLY; i++)
        pthread_mutex_init(&tally_mu[i], NULL);
    pthread_t t[NP + NC];
    for (long i = 0; i < NP; i++)
        CHECK(pthread_create(&t[i], NULL, producer, (void *)i) == 0);
    for (long i = 0; i < NC; i++)
        CHECK(pthread_create(&t[NP + i], NULL, consumer, (void *)i) == 0);
    unsigned long long expect = 0;
    for (int r = 0; r < rounds; r++) {
        for (long p = 0; p < NP; p++)
            for (int i = 0; i < PER_ROUND; i++)
                expect += mix(((unsigned long long)r << 32) | ((unsigned long long)p << 24) | (unsigned)i);
        barrier(); /* everyone finished round r */
        unsigned long long sum = 0, n = 0;
        for (int s = 0; s < TALLY; s++) {
            pthread_mutex_lock(&tally_mu[s]);
            sum += tally_sum[s];
            n += tally_n[s];
            pthread_mutex_unlock(&tally_mu[s]);
        }
        pthread_mutex_lock(&mu);
        int c = count;
        pthread_mutex_unlock(&mu);
        if (c != 0 || n != (unsigned long long)(r + 1) * NP * PER_ROUND || sum != expect)
            violations++;
        printf("round %d items %llu checksum %016llx violations %d\n", r, n, sum, violations);
        fflush(stdout);
        if (r == 3)
            marker("started", "pid=%d\n", (int)getpid());
        nap_ms(40);
        barrier(); /* release round r+1 */
    }
    for (int i = 0; i < NP + NC; i++)
        pthread_join(t[i], NULL);
    printf("final checksum %016llx verdict %s\n", expect, violations ? "BROKEN" : "ok");
    return violations ? 1 : 0;
}
