/* Minimal test helpers: a failed CHECK prints file:line and the condition
 * and marks the test failed; tests return check_status(). Exit code 77
 * tells meson the test was skipped. */
#ifndef KD_TEST_CHECK_H
#define KD_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      check_failures++;                                                    \
    }                                                                      \
  } while (0)

#define CHECK_MSG(cond, ...)                                               \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
      check_failures++;                                                    \
    }                                                                      \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                              \
  do {                                                                     \
    double check_a_ = (double)(a), check_b_ = (double)(b);                 \
    if (!(fabs(check_a_ - check_b_) <= (tol)) ) {                          \
      fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s=%.9g vs %s=%.9g (tol %g)\n", \
              __FILE__, __LINE__, #a, check_a_, #b, check_b_, (double)(tol)); \
      check_failures++;                                                    \
    }                                                                      \
  } while (0)

static inline int check_status(const char *name) {
  if (check_failures) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
    return 1;
  }
  printf("%s: ok\n", name);
  return 0;
}

/* A test's oracle mode (`--oracle`, its own meson test in the "oracle"
 * suite): rc is the comparison's status, 77 when the oracle (Python, torch,
 * numpy) could not run. A skip stays a skip, never an OK. */
static inline int check_oracle_status(const char *name, int rc) {
  if (!check_failures && rc == 77) {
    printf("%s: oracle comparison skipped\n", name);
    return 77;
  }
  return check_status(name);
}

#endif
