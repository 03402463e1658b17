/* The one way kdscope prints a setting's number: the fewest significant
 * digits that read back as the same double, in plain decimals from 1e-4
 * to below 1e9 ("0.00025", "16", "1234567") and in scientific notation
 * outside it with a bare exponent ("5e-6", "2.5e10"). The value boxes,
 * the run log and `kdscope settings` all use it, so a number typed or
 * logged is shown exactly and never cut off. */
#ifndef KD_NUMFMT_H
#define KD_NUMFMT_H

#include <stddef.h>

/* v into buf (len >= 32 holds any double); returns buf. */
const char *kd_num_format(double v, char *buf, size_t len);

#endif
