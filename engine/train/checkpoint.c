#include "train/checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

int kd_checkpoint_save(const char *path, KdParams *const *stores, int nstores, const char *const *meta_kv, KdError *err) {
  if (nstores == 1) return kd_safetensors_save(path, stores[0], meta_kv, err);
  int n = 0;
  for (int s = 0; s < nstores; s++) n += kd_params_count(stores[s]);
  const char **names = malloc(sizeof *names * (size_t)(n + 1));
  const float **data = malloc(sizeof *data * (size_t)(n + 1));
  int *ndims = malloc(sizeof *ndims * (size_t)(n + 1));
  int(*shapes)[4] = malloc(sizeof *shapes * (size_t)(n + 1));
  int rc = -1;
  if (!names || !data || !ndims || !shapes) {
    kd_error(err, "%s: out of memory", path);
    goto done;
  }
  int k = 0;
  for (int s = 0; s < nstores; s++)
    for (int i = 0; i < kd_params_count(stores[s]); i++, k++) {
      const KdTensor *t = kd_params_at(stores[s], i);
      names[k] = t->name;
      data[k] = t->data;
      ndims[k] = t->ndim;
      memcpy(shapes[k], t->shape, sizeof shapes[k]);
    }
  rc = kd_safetensors_write(path, n, names, data, ndims, (const int(*)[4])shapes, meta_kv, err);
done:
  free(names), free(data), free(ndims), free(shapes);
  return rc;
}

int kd_checkpoint_load(const char *path, KdParams *const *stores, int nstores, int strict, KdError *err) {
  for (int s = 0; s < nstores; s++)
    if (kd_safetensors_load(path, stores[s], 0, err)) return -1;
  if (!strict) return 0;
  KdSafetensors *st = kd_safetensors_open(path, err);
  if (!st) return -1;
  int extra = 0;
  char list[512] = "";
  for (int i = 0; i < kd_safetensors_count(st); i++) {
    const char *nm = kd_safetensors_name(st, i);
    int found = 0;
    for (int s = 0; s < nstores && !found; s++) found = kd_params_find(stores[s], nm) != NULL;
    if (!found) {
      if (extra++ < 5) {
        strncat(list, extra > 1 ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, nm, sizeof list - strlen(list) - 1);
      }
    }
  }
  kd_safetensors_close(st);
  if (extra) return kd_error(err, "%s: %d unexpected tensor(s): %s%s", path, extra, list, extra > 5 ? ", ..." : "");
  return 0;
}
