#include "train/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef KD_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_joined = 0;

int kd_dist_built(void) {
#ifdef KD_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

int kd_dist_rank(void) { return g_rank; }

int kd_dist_threads(int configured) {
  if (configured > 0 || g_size < 2) return configured;
  const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  long cores = sysconf(_SC_NPROCESSORS_ONLN), here = local ? atol(local) : g_size;
  long t = here > 0 ? cores / here : 1;
  return t > 0 ? (int)t : 1;
}
int kd_dist_size(void) { return g_size; }

/* mpirun (Open MPI's PRRTE, or another launcher through PMIx/PMI) sets
 * these; a plain start has none of them and never touches MPI. */
static int launched_by_mpirun(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", NULL};
  for (int i = 0; vars[i]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

int kd_dist_init(KdError *err) {
  if (g_joined || !launched_by_mpirun()) return 0;
#ifdef KD_HAVE_MPI
  int provided = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    return kd_error(err, "MPI_Init_thread failed");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return kd_error(err, "this MPI gives thread level %d; a run needs MPI_THREAD_SERIALIZED", provided);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_joined = 1;
  return 0;
#else
  (void)err;
  /* Started by mpirun, built without MPI: every copy would train alone
   * into the same place. */
  const char *n = getenv("OMPI_COMM_WORLD_SIZE");
  if (n && atoi(n) > 1) return kd_error(err, "started by mpirun, but this kdscope was built without MPI (meson -Dmpi=enabled)");
  return 0;
#endif
}

void kd_dist_finalize(void) {
#ifdef KD_HAVE_MPI
  if (g_joined) MPI_Finalize();
#endif
  g_joined = 0;
  g_rank = 0, g_size = 1;
}

void kd_dist_abort(int code) {
#ifdef KD_HAVE_MPI
  if (g_joined) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
#endif
  (void)code;
}

#ifdef KD_HAVE_MPI
/* In place, in pieces of at most INT_MAX elements (MPI counts are int). */
static void sum_in_place(void *buf, size_t n, size_t elem, MPI_Datatype type) {
  for (size_t at = 0; g_size > 1 && at < n;) {
    int k = n - at > (size_t)INT_MAX ? INT_MAX : (int)(n - at);
    MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * elem, k, type, MPI_SUM, MPI_COMM_WORLD);
    at += (size_t)k;
  }
}
#endif

void kd_dist_sum_f32(float *buf, size_t n) {
#ifdef KD_HAVE_MPI
  sum_in_place(buf, n, sizeof *buf, MPI_FLOAT);
#else
  (void)buf, (void)n;
#endif
}

void kd_dist_sum_f64(double *buf, size_t n) {
#ifdef KD_HAVE_MPI
  sum_in_place(buf, n, sizeof *buf, MPI_DOUBLE);
#else
  (void)buf, (void)n;
#endif
}

void kd_dist_sum_f32_ordered(float *buf, size_t n) {
#ifdef KD_HAVE_MPI
  if (g_size < 2 || !n) return;
  /* Only the run thread reduces: one receive buffer, kept between steps. */
  static float *in;
  static size_t in_cap;
  if (g_rank == 0 && n > in_cap) {
    float *grown = realloc(in, n * sizeof *in);
    if (!grown) {
      fprintf(stderr, "kdscope: out of memory for the ordered reduction of %zu values\n", n);
      kd_dist_abort(1);
    }
    in = grown, in_cap = n;
  }
  for (int r = 1; r < g_size; r++)
    for (size_t at = 0; at < n;) {
      int k = n - at > (size_t)INT_MAX ? INT_MAX : (int)(n - at);
      if (g_rank == 0) {
        MPI_Recv(in + at, k, MPI_FLOAT, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (int i = 0; i < k; i++) buf[at + i] += in[at + i];
      } else if (g_rank == r) {
        MPI_Send(buf + at, k, MPI_FLOAT, 0, 0, MPI_COMM_WORLD);
      }
      at += (size_t)k;
    }
  kd_dist_bcast(buf, n * sizeof *buf);
#else
  (void)buf, (void)n;
#endif
}

int kd_dist_gather(const void *mine, size_t bytes, void **all, size_t *all_bytes, KdError *err) {
  *all = NULL, *all_bytes = 0;
  if (g_size < 2) {
    *all = malloc(bytes ? bytes : 1);
    if (!*all) return kd_error(err, "out of memory gathering %zu bytes", bytes);
    if (bytes) memcpy(*all, mine, bytes);
    *all_bytes = bytes;
    return 0;
  }
#ifdef KD_HAVE_MPI
  int mine_n = bytes > (size_t)INT_MAX ? -1 : (int)bytes;
  int *counts = g_rank == 0 ? calloc((size_t)g_size, sizeof *counts) : NULL;
  int *displs = g_rank == 0 ? calloc((size_t)g_size, sizeof *displs) : NULL;
  int ok = g_rank != 0 || (counts && displs);
  MPI_Gather(&mine_n, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
  size_t total = 0;
  for (int r = 0; ok && g_rank == 0 && r < g_size; r++) {
    if (counts[r] < 0 || total + (size_t)counts[r] > (size_t)INT_MAX) ok = 0;
    else displs[r] = (int)total, total += (size_t)counts[r];
  }
  char *buf = ok && g_rank == 0 ? malloc(total ? total : 1) : NULL;
  if (g_rank == 0 && !buf) ok = 0;
  if (kd_dist_agree(ok ? 0 : -1, err)) {
    if (!ok) kd_error(err, "cannot gather %zu bytes from the ranks (over 2 GiB or out of memory)", bytes);
    free(counts), free(displs), free(buf);
    return -1;
  }
  MPI_Gatherv(mine, mine_n, MPI_BYTE, buf, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
  free(counts), free(displs);
  *all = buf, *all_bytes = total;
  return 0;
#else
  (void)mine;
  return kd_error(err, "kd_dist_gather: no MPI");
#endif
}

void kd_dist_bcast(void *buf, size_t bytes) {
#ifdef KD_HAVE_MPI
  for (size_t at = 0; g_size > 1 && at < bytes;) {
    int k = bytes - at > (size_t)INT_MAX ? INT_MAX : (int)(bytes - at);
    MPI_Bcast((char *)buf + at, k, MPI_BYTE, 0, MPI_COMM_WORLD);
    at += (size_t)k;
  }
#else
  (void)buf, (void)bytes;
#endif
}

int kd_dist_agree(int rc, KdError *err) {
  if (g_size < 2) return rc ? -1 : 0;
  /* The lowest failing rank, or g_size when none failed. */
  double first = rc ? g_rank : g_size, all[1];
#ifdef KD_HAVE_MPI
  MPI_Allreduce(&first, all, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
#else
  all[0] = first;
#endif
  if ((int)all[0] >= g_size) return 0;
  if (!rc) kd_error(err, "rank %d of %d failed (its own output says why)", (int)all[0], g_size);
  return -1;
}

int kd_dist_same(uint64_t h) {
  if (g_size < 2) return 1;
  uint64_t m[2] = {h, ~h};
#ifdef KD_HAVE_MPI
  MPI_Allreduce(MPI_IN_PLACE, m, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
#endif
  return m[0] == ~m[1]; /* the largest h is the smallest */
}

int kd_dist_share_config(KdConfig *cfg, KdError *err) {
  if (g_size < 2) return cfg ? 0 : -1;
  char *json = g_rank == 0 && cfg ? kd_config_to_json(cfg) : NULL;
  long len = g_rank == 0 ? (json ? (long)strlen(json) : -1) : 0;
  kd_dist_bcast(&len, sizeof len);
  if (len < 0) {
    free(json);
    return cfg ? kd_error(err, "rank 0 has no config") : -1;
  }
  if (g_rank != 0) {
    json = malloc((size_t)len + 1);
    if (!json) kd_dist_abort(1), exit(1); /* the bcast below must not be missed */
    json[len] = 0;
  }
  kd_dist_bcast(json, (size_t)len);
  int rc = g_rank != 0 && cfg ? kd_config_load_string(cfg, json, "rank 0's config", err) : 0;
  free(json);
  return kd_dist_agree(rc, err);
}
