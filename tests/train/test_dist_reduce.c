/* The collectives of data-parallel runs (train/dist.c), run under
 * `mpirun -np 3` by dist_reduce.sh: the ordered sum gives exactly the
 * rank-order float sum ((b0 + b1) + b2) on every rank, values chosen so
 * that the order changes the bits; the allreduce agrees within rounding;
 * the gather concatenates in rank order (one rank sending nothing). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "train/dist.h"

enum { N = 70001 }; /* odd, so that MPI's segmenting does not align */

/* Rank r's values: signs and magnitudes 1e-3 .. 1e3, where adding in
 * another order changes the rounding of most sums. */
static void values(int r, float *v) {
  KdRng g;
  kd_rng_seed(&g, 7, (uint64_t)r);
  for (int i = 0; i < N; i++) v[i] = (kd_rng_below(&g, 2) ? 1.0f : -1.0f) * powf(10.0f, kd_rng_range(&g, -3.0f, 3.0f));
}

int main(void) {
  KdError err;
  if (kd_dist_init(&err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  int rank = kd_dist_rank(), size = kd_dist_size();
  if (size != 3) {
    fprintf(stderr, "test_dist_reduce: run with mpirun -np 3 (size %d)\n", size);
    kd_dist_finalize();
    return 1;
  }
  float *mine = malloc(sizeof *mine * N), *ordered = malloc(sizeof *ordered * N), *all = malloc(sizeof *all * N);
  float *expect = calloc(N, sizeof *expect), *tmp = malloc(sizeof *tmp * N);
  CHECK(mine && ordered && all && expect && tmp);
  values(rank, mine);
  for (int r = 0; r < size; r++) { /* the sum in rank order, made here */
    values(r, tmp);
    for (int i = 0; i < N; i++) expect[i] = r ? expect[i] + tmp[i] : tmp[i];
  }
  memcpy(ordered, mine, sizeof *mine * N);
  memcpy(all, mine, sizeof *mine * N);
  kd_dist_sum_f32_ordered(ordered, N);
  kd_dist_sum_f32(all, N);
  int off = 0, order_matters = 0, allreduce_differs = 0;
  double worst = 0;
  float *v[3] = {malloc(sizeof(float) * N), malloc(sizeof(float) * N), malloc(sizeof(float) * N)};
  for (int r = 0; r < 3; r++) values(r, v[r]);
  for (int i = 0; i < N; i++) {
    off += memcmp(&ordered[i], &expect[i], sizeof(float)) != 0;
    float other = v[0][i] + (v[1][i] + v[2][i]);
    order_matters += other != expect[i];
    allreduce_differs += all[i] != expect[i];
    double scale = fabs(v[0][i]) + fabs(v[1][i]) + fabs(v[2][i]);
    double d = fabs((double)all[i] - (double)expect[i]) / scale;
    worst = d > worst ? d : worst;
  }
  CHECK_MSG(off == 0, "rank %d: %d of %d ordered sums are not the rank-order sum", rank, off, N);
  CHECK_MSG(order_matters > N / 10, "the values do not test the order: %d of %d sums depend on it", order_matters, N);
  CHECK_MSG(worst < 2e-7, "the allreduce is off by %.3g of the summands' size", worst);
  if (rank == 0)
    printf("test_dist_reduce: %d of %d sums depend on the order; ordered = rank-order sum on every element; "
           "MPI's allreduce differs from it on %d, worst %.2g of the summands' size\n",
           order_matters, N, allreduce_differs, worst);
  /* Gather: rank r sends r * 3 bytes of value r + 1 (rank 0 sends none). */
  unsigned char send[8];
  memset(send, rank + 1, sizeof send);
  void *got = NULL;
  size_t bytes = 0;
  CHECK(kd_dist_gather(send, (size_t)rank * 3, &got, &bytes, &err) == 0);
  if (rank == 0) {
    const unsigned char want[9] = {2, 2, 2, 3, 3, 3, 3, 3, 3};
    CHECK_MSG(bytes == 9 && got && !memcmp(got, want, 9), "gathered %zu bytes", bytes);
  } else {
    CHECK(got == NULL && bytes == 0);
  }
  free(got);
  for (int r = 0; r < 3; r++) free(v[r]);
  free(mine), free(ordered), free(all), free(expect), free(tmp);
  int rc = check_status("dist_reduce");
  kd_dist_finalize();
  return rc;
}
