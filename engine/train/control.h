/* Control of a run from other processes, through its run directory.
 *
 * RUN_DIR/control.jsonl is an append-only list of commands, one JSON line
 * each: {"seq":N,"time":"...","cmd":"set","key":K,"value":V[,"undo":true]} or
 * {"seq":N,"time":"...","cmd":"pause"|"resume"|"stop"}. A writer takes an
 * flock on the file, numbers its lines after the largest seq present and
 * appends them with one O_APPEND write(2). The process running the run
 * polls the file's size at each step boundary and reads complete new lines
 * in order. Every command the run handles leaves an event naming its seq in
 * events.jsonl, which is how a resumed run knows where to continue.
 *
 * RUN_DIR/lock is flocked (and holds the pid) while a process drives the
 * run, so a writer can tell whether anyone listens and two processes never
 * drive one run. The kernel drops the lock when the process dies, even by
 * kill -9. See docs/RUNS.md. */
#ifndef KD_CONTROL_H
#define KD_CONTROL_H

#include <stddef.h>

#include "core/config.h"
#include "core/error.h"
#include "distill/side.h"

typedef enum { KD_CTL_SET, KD_CTL_PAUSE, KD_CTL_RESUME, KD_CTL_STOP } KdControlKind;

typedef struct KdControlCmd {
  long seq; /* assigned by kd_control_append */
  KdControlKind kind;
  int undo; /* set: puts back an earlier value; its event says "undo":true */
  char key[128];
  char value[1024];
} KdControlCmd;

const char *kd_control_kind_name(KdControlKind k);

/* Checks that key may change during a run and that value fits its
 * descriptor: unknown key, non-live key and bad value are refused with a
 * message naming the key (and the range). When it passes, the value is
 * stored in cfg (a validator copy for callers that only check; the run
 * thread applies changes to its own config this way); a refused value
 * leaves cfg as it was. canon (may be NULL) receives the value as the
 * config prints it. */
int kd_control_check_set(KdConfig *cfg, const char *key, const char *value, char *canon, size_t len, KdError *err);
/* The same, and with avail (a run's student/teacher pair; NULL: none)
 * refuses a value under which an active method would lack an input
 * (distill/side.h: kd_distill_check), e.g. a method added to
 * distill.methods that needs class logits the teacher does not have. */
int kd_control_check_set_avail(KdConfig *cfg, const KdDistillAvail *avail, const char *key, const char *value, char *canon,
                               size_t len, KdError *err);

/* Appends n commands to RUN_DIR/control.jsonl (created if absent) in one
 * write, under the file's lock; fills each cmd's seq. */
int kd_control_append(const char *run_dir, KdControlCmd *cmds, int n, KdError *err);

/* Reads the commands other processes append, in order. Commands with seq
 * <= applied_seq are skipped (handled by an earlier process). */
typedef struct KdControlReader KdControlReader;
KdControlReader *kd_control_reader_new(const char *run_dir, long applied_seq, KdError *err);
void kd_control_reader_free(KdControlReader *r);
/* 1: *cmd is the next command; *before_start is set when its line was in
 * the file before the reader opened (written for an earlier process).
 * 0: nothing new. -1: a malformed line (err says which; it is skipped, the
 * next call goes on). Cheap when nothing changed: one fstat. */
int kd_control_next(KdControlReader *r, KdControlCmd *cmd, int *before_start, KdError *err);

/* Replays the "set" events of RUN_DIR/events.jsonl onto cfg in order: the
 * live values in effect after the last logged step. *applied_seq receives
 * the largest control seq any event names (0 if none), *nsets the number
 * of sets replayed. Events that no longer validate are skipped. */
int kd_control_replay_events(const char *run_dir, KdConfig *cfg, long *applied_seq, int *nsets, KdError *err);

/* Takes RUN_DIR/lock for this process (writes the pid). Returns the fd to
 * keep open, or -1 when another process holds it (err names its pid). */
int kd_control_lock(const char *run_dir, KdError *err);
void kd_control_unlock(int fd);
/* 1 when a live process holds RUN_DIR/lock (*pid its pid when known). */
int kd_control_is_running(const char *run_dir, long *pid);

#endif
