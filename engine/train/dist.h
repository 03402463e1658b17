/* Data-parallel runs over MPI (Open MPI): which rank this process is and
 * the few collectives a run needs. Without an MPI build (meson -Dmpi), or
 * when the process was not started by mpirun, there is one rank and every
 * call is a no-op: the serial build needs no MPI at all.
 *
 * Calls are made by one thread at a time (MPI_THREAD_SERIALIZED): the
 * verb's main thread before the run starts, then the run thread only.
 * Every rank makes the same calls in the same order (docs/RUNS.md,
 * "Distributed runs"). */
#ifndef KD_DIST_H
#define KD_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"

/* Joins the job when mpirun started this process (its environment says
 * so); otherwise one rank. Idempotent. -1 (err) when MPI fails to start. */
int kd_dist_init(KdError *err);
/* Leaves the job (after the last collective). */
void kd_dist_finalize(void);
/* Ends every rank of the job at once (MPI_Abort) with code; returns only
 * without MPI. */
void kd_dist_abort(int code);
int kd_dist_rank(void);
int kd_dist_size(void);
/* The threads a rank takes for train.threads = 0 ("all cores"): 0 (all)
 * in a one-rank run, else the online cores shared among the ranks on this
 * machine (at least 1), so N ranks do not each start a thread per core. */
int kd_dist_threads(int configured);
/* 1 when the build has MPI (whether or not this process joined a job). */
int kd_dist_built(void);

/* In place, summed over the ranks. */
void kd_dist_sum_f32(float *buf, size_t n);
void kd_dist_sum_f64(double *buf, size_t n);
/* In place, summed on rank 0 in rank order ((b0 + b1) + b2 ...) and
 * broadcast: the same bits for a given N whatever algorithm MPI's
 * allreduce picks (train.reduce = ordered). */
void kd_dist_sum_f32_ordered(float *buf, size_t n);
/* Every rank's bytes, concatenated in rank order, on rank 0: *all
 * malloc'd there (NULL elsewhere), *all_bytes their length. Every rank
 * calls it; -1 on every rank (err) when one could not take part. */
int kd_dist_gather(const void *mine, size_t bytes, void **all, size_t *all_bytes, KdError *err);
/* Rank 0's bytes to every rank. */
void kd_dist_bcast(void *buf, size_t bytes);
/* Every rank says whether its part went well (0) or not: returns 0 when
 * all did, else -1 with err naming the first rank that failed (its own
 * message on that rank). So a failure on one rank never leaves the others
 * waiting in a later collective. */
int kd_dist_agree(int rc, KdError *err);
/* 1 when h is the same on every rank (0 otherwise, on every rank). */
int kd_dist_same(uint64_t h);
/* Rank 0's config to every rank (the whole JSON, loaded over what each
 * rank has); -1 (err) when rank 0 has none (cfg NULL there: every rank
 * fails) or it does not load. */
int kd_dist_share_config(KdConfig *cfg, KdError *err);

#endif
