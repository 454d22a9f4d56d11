/* The f32 peak of this CPU's vector units: independent fused multiply-add chains on every thread, as wide
 * as the compiler targets for this machine (-march=native). benches/perf.sh reads the engines' GFLOP/s
 * against it, beside each engine's own matrix-product rate.
 *
 *   cc -O3 -march=native -mprefer-vector-width=512 -ffp-contract=fast -fopenmp benches/fma_peak.c \
 *       -o target/fma_peak && target/fma_peak [THREADS]
 *
 * Prints one JSON line: {"workload": "fma", "peak_gflop_per_s": ..., "threads": ..., "lanes": ...}.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
#define CHAINS 16 /* enough independent chains to hide the FMA latency (4 cycles) on two ports */

typedef float vec __attribute__((vector_size(LANES * sizeof(float))));

static double run(long iters) {
    double flop = 0.0;
#pragma omp parallel reduction(+ : flop)
    {
        vec acc[CHAINS], a, b;
        for (int i = 0; i < LANES; i++) {
            a[i] = 1.0f + 1e-7f * (float)omp_get_thread_num();
            b[i] = 0.999999f;
        }
        for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)(c + 1);
        for (long n = 0; n < iters; n++) {
            for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * b + a; /* contracted to one FMA */
        }
        float sink = 0.0f;
        for (int c = 0; c < CHAINS; c++)
            for (int i = 0; i < LANES; i++) sink += acc[c][i];
        if (sink == 12345.678f) printf("#");
        flop += 2.0 * LANES * CHAINS * (double)iters;
    }
    return flop;
}

int main(int argc, char **argv) {
    if (argc > 1) omp_set_num_threads(atoi(argv[1]));
    run(1000000); /* warm up: clocks, thread start */
    double best = 0.0;
    for (int r = 0; r < 5; r++) {
        double t0 = omp_get_wtime();
        double flop = run(20000000);
        double rate = flop / (omp_get_wtime() - t0) / 1e9;
        if (rate > best) best = rate;
    }
    printf("{\"engine\": \"hardware\", \"workload\": \"fma\", \"peak_gflop_per_s\": %.1f, \"threads\": %d, \"lanes\": %d}\n", best, omp_get_max_threads(), LANES);
    return 0;
}
