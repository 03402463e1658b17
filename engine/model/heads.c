/* The list of head kinds, generated from engine/model/meson.build (one
 * name there per kind), and lookups by name. No head code here. */
#include <string.h>

#include "model/head.h"
#include "head_list.h" /* generated (build/engine/model/): #define KD_HEAD_LIST X(retinanet) ... */

#define X(name) extern const KdHeadKind kd_head_##name;
KD_HEAD_LIST
#undef X

static const KdHeadKind *const kinds[] = {
#define X(name) &kd_head_##name,
    KD_HEAD_LIST
#undef X
};

int kd_head_kind_count(void) { return (int)(sizeof kinds / sizeof kinds[0]); }
const KdHeadKind *kd_head_kind_at(int i) { return kinds[i]; }

const KdHeadKind *kd_head_kind_find(const char *name) {
  for (int i = 0; i < kd_head_kind_count(); i++)
    if (!strcmp(kinds[i]->name, name)) return kinds[i];
  return NULL;
}

static const char *kind_name(int i) { return kinds[i]->name; }
const char *kd_head_kind_names(char *buf, size_t len) { return kd_error_names(buf, len, kd_head_kind_count(), kind_name); }

KdTensor *const *kd_head_out_find(const KdHeadOut *o, const char *name) {
  for (int i = 0; i < o->nout; i++)
    if (!strcmp(o->names[i], name)) return o->lv[i];
  return NULL;
}
