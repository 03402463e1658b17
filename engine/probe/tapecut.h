/* Backward passes that stop at chosen tensors. A probe wants dL/dS for the
 * student's FPN features S only, once per loss source; walking the whole
 * tape each time would also run the backbone's backward (most of a step's
 * cost) for gradients nobody reads. kd_tape_cut_below disables, on a tape
 * the caller owns, every node that cannot carry gradient into the chosen
 * tensors: a node runs only if one of its inputs is a chosen tensor or
 * derives from one. dL/d(chosen) is unchanged (a chosen tensor that derives
 * from another, like P6 from P5, still passes its gradient on); parameter
 * gradients upstream of the chosen tensors are no longer computed, so the
 * tape is good for probing only and is discarded with the ctx reset. */
#ifndef KD_PROBE_TAPECUT_H
#define KD_PROBE_TAPECUT_H

#include "core/tensor.h"

/* newest: the last node of the tape (e.g. the total loss's node), walked
 * through ->prev. Returns the number of nodes disabled, or -1 when out of
 * memory (nothing is changed then). */
int kd_tape_cut_below(KdNode *newest, KdTensor *const *chosen, int nchosen);

#endif
