/* COCO results: letterbox undo + xywh conversion, the JSON file (parsed
 * back with cJSON: ids mapped through the table, exact float values),
 * an empty list, and errors (category outside the table, bad path). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "detect/cocoresults.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

int main(void) {
  /* network input 128x128 holding a 256x192 image scaled by .5, padded
   * 16 px at the top */
  KdDetection d[2] = {{10.0f, 26.0f, 50.0f, 66.0f, 0.875f, 2}, {0.1f, 16.3f, 127.7f, 111.9f, 0.0517f, 0}};
  KdCocoDet c[2];
  kd_dets_to_coco(d, 2, 42, 0.5f, 0.0f, 16.0f, c);
  CHECK(c[0].image_id == 42 && c[0].category == 2);
  CHECK_NEAR(c[0].bbox[0], 20.0, 1e-9);
  CHECK_NEAR(c[0].bbox[1], 20.0, 1e-9);
  CHECK_NEAR(c[0].bbox[2], 80.0, 1e-9);
  CHECK_NEAR(c[0].bbox[3], 80.0, 1e-9);
  CHECK(c[0].score == 0.875);
  c[1].image_id = 9000000000LL; /* ids beyond 32 bits survive */

  char path[256];
  const char *dir = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/kd_results_%d.json", dir && *dir ? dir : "/tmp", (int)getpid());
  int cat_ids[3] = {1, 5, 90};
  KdError err = {{0}};
  CHECK_MSG(kd_coco_write_results(path, c, 2, cat_ids, 3, &err) == 0, "%s", err.msg);
  char *text = slurp(path);
  cJSON *root = text ? cJSON_Parse(text) : NULL;
  CHECK(cJSON_IsArray(root) && cJSON_GetArraySize(root) == 2);
  for (int i = 0; root && i < 2; i++) {
    cJSON *o = cJSON_GetArrayItem(root, i), *bb = cJSON_GetObjectItem(o, "bbox");
    CHECK(cJSON_GetObjectItem(o, "image_id")->valuedouble == (double)c[i].image_id);
    CHECK(cJSON_GetObjectItem(o, "category_id")->valueint == (i ? 1 : 90));
    CHECK(cJSON_GetArraySize(bb) == 4);
    for (int j = 0; j < 4; j++) CHECK((float)cJSON_GetArrayItem(bb, j)->valuedouble == (float)c[i].bbox[j]);
    CHECK((float)cJSON_GetObjectItem(o, "score")->valuedouble == (float)c[i].score);
  }
  cJSON_Delete(root);
  free(text);
  /* empty list is valid JSON */
  CHECK(kd_coco_write_results(path, c, 0, cat_ids, 3, &err) == 0);
  text = slurp(path);
  root = text ? cJSON_Parse(text) : NULL;
  CHECK(cJSON_IsArray(root) && cJSON_GetArraySize(root) == 0);
  cJSON_Delete(root);
  free(text);
  /* category outside the table */
  c[0].category = 3;
  CHECK(kd_coco_write_results(path, c, 2, cat_ids, 3, &err) == -1);
  CHECK(strstr(err.msg, "category 3") != NULL);
  c[0].category = 2;
  CHECK(kd_coco_write_results("/nonexistent-dir/x.json", c, 2, cat_ids, 3, &err) == -1);
  CHECK(strstr(err.msg, "/nonexistent-dir/x.json") != NULL);
  unlink(path);
  return check_status("test_cocoresults");
}
