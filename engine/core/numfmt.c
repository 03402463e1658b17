#include "core/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fewest significant digits (1..17) whose %e form reads back as v. */
static int shortest_digits(double v, int *exp10) {
  char buf[40];
  int p = 1;
  for (; p < 17; p++) {
    snprintf(buf, sizeof buf, "%.*e", p - 1, v);
    if (strtod(buf, NULL) == v) break;
  }
  snprintf(buf, sizeof buf, "%.*e", p - 1, v);
  *exp10 = atoi(strchr(buf, 'e') + 1);
  return p;
}

const char *kd_num_format(double v, char *buf, size_t len) {
  if (!len) return buf;
  if (v == 0 || !isfinite(v)) {
    snprintf(buf, len, v == 0 ? "0" : "%g", v);
    return buf;
  }
  int e, p = shortest_digits(v, &e);
  if (e >= -4 && e < 9) {
    int decimals = p - 1 - e;
    snprintf(buf, len, "%.*f", decimals > 0 ? decimals : 0, v);
    return buf;
  }
  char m[40];
  snprintf(m, sizeof m, "%.*e", p - 1, v);
  char *x = strchr(m, 'e');
  *x = 0;
  snprintf(buf, len, "%se%d", m, e); /* "5e-6", not "5e-06" */
  return buf;
}
