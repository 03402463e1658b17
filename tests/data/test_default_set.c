/* The default data set end to end (slow: builds all 6000 + 500 images):
 * kd_ensure_default_dataset builds it under $XDG_DATA_HOME on first use,
 * reports progress, clears a dead build's temp directory, and the second
 * call finds it without building. */
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "data/dataset.h"
#include "data/fashion.h"
#include "fixture.h"

static long calls, last_done, last_total;

static void progress(void *user, const char *what, long done, long total) {
  (void)user, (void)what;
  calls++;
  if (total <= 0) return;
  CHECK(done >= last_done || total != last_total);
  last_done = done, last_total = total;
}

int main(void) {
  KdError e;
  KdFashionMnist probe;
  if (kd_fashion_mnist_load(NULL, "t10k", &probe, &e)) {
    printf("skip: %s\n", e.msg);
    return 77;
  }
  kd_fashion_mnist_free(&probe);
  fx_tmpdir("default");
  setenv("XDG_DATA_HOME", fx_dir, 1);
  /* A temp directory left by a build whose process is gone (pid 999999999
   * cannot exist: Linux pids stop at 2^22). */
  fx_mkdir("kdscope/fashion-det.tmp.999999999/images");
  char dir[1024];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_MSG(kd_ensure_default_dataset(dir, sizeof dir, progress, NULL, &e) == 0, "%s", e.msg);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("default set built in %.1f s\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
  CHECK(kd_fashion_is_complete(dir) && calls >= 2 && last_done == 6500 && last_total == 6500);
  CHECK(!kd_path_exists(fx_path("kdscope/fashion-det.tmp.999999999")));
  KdDataset *ds = NULL;
  CHECK(kd_dataset_open_dir(dir, "train", &ds, &e) == 0 && kd_dataset_num_images(ds) == 6000);
  kd_dataset_free(ds);
  CHECK(kd_dataset_open_dir(dir, "val", &ds, &e) == 0 && kd_dataset_num_images(ds) == 500);
  kd_dataset_free(ds);
  calls = 0;
  CHECK(kd_ensure_default_dataset(dir, sizeof dir, progress, NULL, &e) == 0 && calls == 0);
  return check_status("test_default_set");
}
