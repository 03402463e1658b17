/* Figure text: every label goes through Pango, so a glyph the chosen face
 * lacks (→, ², µ in a Latin Modern figure) falls back to another font
 * instead of a box, and simple math labels (L_{cls}, \alpha_{bg}, x^{2})
 * render as subscripts, superscripts and Greek letters. The face, weight
 * and size are the cairo context's (kd_fig_font sets them), so callers
 * that scale the font keep working. Also: is a font family installed. */
#include <ctype.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "figure_priv.h"

void kd_fig_font(cairo_t *cr, const KdFigStyle *st, double size_pt, KdFigWeight weight) {
  cairo_select_font_face(cr, st->font_family && *st->font_family ? st->font_family : KD_FIG_DEFAULT_FONT,
                         CAIRO_FONT_SLANT_NORMAL,
                         weight == KD_FIG_BOLD ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size_pt);
}

/* ---- math labels to Pango markup ---- */

typedef struct Out {
  char *buf;
  size_t len, n;
} Out;

static void put(Out *o, const char *s, size_t k) {
  if (o->n + k >= o->len) k = o->n + 1 < o->len ? o->len - o->n - 1 : 0;
  memcpy(o->buf + o->n, s, k);
  o->n += k;
  o->buf[o->n] = 0;
}

static void puts_(Out *o, const char *s) { put(o, s, strlen(s)); }

static const struct {
  const char *name, *utf8;
} symbols[] = {
    {"alpha", "α"},  {"beta", "β"},   {"gamma", "γ"},    {"delta", "δ"},  {"epsilon", "ε"},
    {"varepsilon", "ε"}, {"zeta", "ζ"}, {"eta", "η"},    {"theta", "θ"},  {"iota", "ι"},
    {"kappa", "κ"},  {"lambda", "λ"}, {"mu", "μ"},       {"nu", "ν"},     {"xi", "ξ"},
    {"pi", "π"},     {"rho", "ρ"},    {"sigma", "σ"},    {"tau", "τ"},    {"upsilon", "υ"},
    {"phi", "φ"},    {"varphi", "φ"}, {"chi", "χ"},      {"psi", "ψ"},    {"omega", "ω"},
    {"Gamma", "Γ"},  {"Delta", "Δ"},  {"Theta", "Θ"},    {"Lambda", "Λ"}, {"Xi", "Ξ"},
    {"Pi", "Π"},     {"Sigma", "Σ"},  {"Upsilon", "Υ"},  {"Phi", "Φ"},    {"Psi", "Ψ"},
    {"Omega", "Ω"},  {"cdot", "·"},   {"times", "×"},    {"to", "→"},     {"pm", "±"},
    {"infty", "∞"},  {"ell", "ℓ"},    {"nabla", "∇"},    {"partial", "∂"}, {"approx", "≈"},
    {"leq", "≤"},    {"geq", "≥"},    {"sim", "∼"},      {"mathcal{L}", "ℒ"},
};

/* Converts s[*i...] up to a closing brace (depth > 0) or the end. */
static void convert(const char *s, size_t *i, Out *o, int depth) {
  while (s[*i]) {
    char c = s[*i];
    if (c == '}' && depth > 0) {
      (*i)++;
      return;
    }
    if ((c == '_' || c == '^') && s[*i + 1] == '{') {
      *i += 2;
      puts_(o, c == '_' ? "<sub>" : "<sup>");
      convert(s, i, o, depth + 1);
      puts_(o, c == '_' ? "</sub>" : "</sup>");
      continue;
    }
    if (c == '\\') {
      size_t best = 0;
      const char *rep = NULL;
      for (size_t k = 0; k < sizeof symbols / sizeof symbols[0]; k++) {
        size_t L = strlen(symbols[k].name);
        /* a whole command: not \tau in \taus */
        if (!strncmp(s + *i + 1, symbols[k].name, L) && L > best &&
            !(isalpha((unsigned char)s[*i + 1 + L]) && isalpha((unsigned char)symbols[k].name[L - 1]))) {
          best = L;
          rep = symbols[k].utf8;
        }
      }
      if (rep) {
        puts_(o, rep);
        *i += 1 + best;
        if (s[*i] == ' ') (*i)++; /* "\alpha b": the space ends the command */
        continue;
      }
    }
    if (c == '$') { /* math delimiters, as a LaTeX user writes them */
      (*i)++;
      continue;
    }
    if (c == '&') puts_(o, "&amp;");
    else if (c == '<') puts_(o, "&lt;");
    else if (c == '>') puts_(o, "&gt;");
    else put(o, &s[*i], 1);
    (*i)++;
  }
}

int kd_fig_label_markup(const char *label, char *out, size_t len) {
  if (!len) return 0;
  out[0] = 0;
  if (!label) return 0;
  Out o = {out, len, 0};
  size_t i = 0;
  convert(label, &i, &o, 0);
  return (int)o.n;
}

/* Whether the label needs markup (most do not: quick path). */
static int plain(const char *s) {
  for (; *s; s++)
    if (*s == '\\' || *s == '$' || *s == '&' || *s == '<' || *s == '>' || ((*s == '_' || *s == '^') && s[1] == '{'))
      return 0;
  return 1;
}

/* ---- layouts ---- */

/* One Pango context and layout per thread, reused for every text: making
 * a context per label costs more than laying the label out. */
typedef struct TextState {
  PangoContext *ctx;
  PangoLayout *layout;
  PangoFontDescription *desc;
} TextState;
static _Thread_local TextState ts;

/* Widths measured, direct-mapped by (text, face, weight, size): a figure's
 * layout measures the same tick labels and keys many times. */
#define WCACHE 2048
#define WKEY 80
typedef struct WEntry {
  char text[WKEY];
  char family[48];
  double size;
  int weight;
  double width;
} WEntry;
static _Thread_local WEntry *wcache;

static TextState *state(void) {
  if (ts.ctx) return &ts;
  ts.ctx = pango_font_map_create_context(pango_cairo_font_map_get_default());
  cairo_font_options_t *fo = cairo_font_options_create();
  cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
  cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
  cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
  pango_cairo_context_set_font_options(ts.ctx, fo);
  cairo_font_options_destroy(fo);
  pango_cairo_context_set_resolution(ts.ctx, 72);
  pango_context_set_round_glyph_positions(ts.ctx, FALSE);
  ts.layout = pango_layout_new(ts.ctx);
  ts.desc = pango_font_description_new();
  return &ts;
}

void kd_fig_text_shutdown(void) {
  if (ts.layout) g_object_unref(ts.layout);
  if (ts.ctx) g_object_unref(ts.ctx);
  if (ts.desc) pango_font_description_free(ts.desc);
  ts = (TextState){0};
  free(wcache);
  wcache = NULL;
  pango_cairo_font_map_set_default(NULL);
}

/* The context's face (kd_fig_font set it), weight and size. */
static const char *face_of(cairo_t *cr, int *bold, double *size) {
  cairo_font_face_t *face = cairo_get_font_face(cr);
  const char *family = KD_FIG_DEFAULT_FONT;
  *bold = 0;
  if (cairo_font_face_get_type(face) == CAIRO_FONT_TYPE_TOY) {
    family = cairo_toy_font_face_get_family(face);
    *bold = cairo_toy_font_face_get_weight(face) == CAIRO_FONT_WEIGHT_BOLD;
  }
  cairo_matrix_t fm;
  cairo_get_font_matrix(cr, &fm);
  *size = fabs(fm.xx);
  return family;
}

/* The shared layout holding s in the context's face and size. */
static PangoLayout *layout_for(cairo_t *cr, const char *s) {
  TextState *t = state();
  int bold;
  double size;
  const char *family = face_of(cr, &bold, &size);
  pango_font_description_set_family(t->desc, family);
  pango_font_description_set_weight(t->desc, bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL);
  pango_font_description_set_absolute_size(t->desc, size * PANGO_SCALE);
  pango_layout_set_font_description(t->layout, t->desc);
  if (plain(s)) {
    pango_layout_set_attributes(t->layout, NULL);
    pango_layout_set_text(t->layout, s, -1);
  } else {
    char m[1024];
    kd_fig_label_markup(s, m, sizeof m);
    pango_layout_set_markup(t->layout, m, -1);
  }
  return t->layout;
}

static unsigned hash_key(const char *s, const char *family, double size, int bold) {
  unsigned h = 2166136261u;
  for (const char *q = s; *q; q++) h = (h ^ (unsigned char)*q) * 16777619u;
  for (const char *q = family; *q; q++) h = (h ^ (unsigned char)*q) * 16777619u;
  h ^= (unsigned)lround(size * 64) * 2654435761u;
  return (h ^ (unsigned)bold) % WCACHE;
}

double kd_fig_text_width(cairo_t *cr, const char *s) {
  if (!s || !*s) return 0;
  int bold;
  double size;
  const char *family = face_of(cr, &bold, &size);
  WEntry *e = NULL;
  if (strlen(s) < WKEY && strlen(family) < sizeof e->family) {
    if (!wcache) wcache = calloc(WCACHE, sizeof *wcache);
    if (wcache) {
      e = &wcache[hash_key(s, family, size, bold)];
      if (e->size == size && e->weight == bold && !strcmp(e->text, s) && !strcmp(e->family, family)) return e->width;
    }
  }
  pango_context_set_matrix(state()->ctx, NULL); /* widths in user space, whatever the last drawing's transform */
  pango_layout_context_changed(ts.layout);
  PangoLayout *l = layout_for(cr, s);
  PangoRectangle logical;
  pango_layout_get_extents(l, NULL, &logical);
  double w = logical.width / (double)PANGO_SCALE;
  if (e) {
    snprintf(e->text, sizeof e->text, "%s", s);
    snprintf(e->family, sizeof e->family, "%s", family);
    e->size = size;
    e->weight = bold;
    e->width = w;
  }
  return w;
}

void kd_fig_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay,
                 double angle) {
  if (!s || !*s) return;
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double w = kd_fig_text_width(cr, s);
  /* Anchor on ascent..descent of the face, but trim the ascent to the cap
   * height region so "middle" looks centred for digits and capitals. */
  double asc = fe.ascent * 0.8, desc = fe.descent;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (angle != 0) cairo_rotate(cr, angle);
  pango_cairo_update_context(cr, state()->ctx);
  pango_layout_context_changed(ts.layout);
  PangoLayout *l = layout_for(cr, s);
  double base = pango_layout_get_baseline(l) / (double)PANGO_SCALE;
  cairo_move_to(cr, -ax * w, asc - ay * (asc + desc) - base);
  pango_cairo_show_layout(cr, l);
  cairo_new_path(cr);
  cairo_restore(cr);
}

void kd_fig_text_fit(cairo_t *cr, double x, double y, const char *s, double ax, double ay,
                     double maxw) {
  if (!s || !*s) return;
  double w = kd_fig_text_width(cr, s);
  if (w <= maxw || maxw <= 0) {
    kd_fig_text(cr, x, y, s, ax, ay, 0);
    return;
  }
  cairo_save(cr);
  cairo_matrix_t fm;
  cairo_get_font_matrix(cr, &fm);
  double k = fmax(0.7, maxw / w);
  cairo_set_font_size(cr, fm.xx * k);
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  size_t len = strlen(buf);
  while (kd_fig_text_width(cr, buf) > maxw && len > 1) {
    /* Drop one UTF-8 character and append an ellipsis. */
    do len--; while (len > 0 && ((unsigned char)buf[len] & 0xC0) == 0x80);
    if (len + 4 > sizeof buf) break;
    memcpy(buf + len, "\xe2\x80\xa6", 4);
  }
  kd_fig_text(cr, x, y, buf, ax, ay, 0);
  cairo_restore(cr);
}

/* ---- installed fonts ---- */

/* Debian packages of the families a paper uses. */
static const char *package_of(const char *family) {
  if (!strncasecmp(family, "Latin Modern", 12) || !strncasecmp(family, "LM ", 3)) return "fonts-lmodern";
  if (!strncasecmp(family, "TeX Gyre", 8)) return "fonts-texgyre";
  if (!strncasecmp(family, "DejaVu", 6)) return "fonts-dejavu-core";
  if (!strncasecmp(family, "Linux Libertine", 15) || !strncasecmp(family, "Linux Biolinum", 14))
    return "fonts-linuxlibertine";
  return NULL;
}

int kd_fig_font_installed(const char *family) {
  if (!family || !*family) return 0;
  if (!FcInit()) return 0;
  FcPattern *p = FcPatternCreate();
  FcPatternAddString(p, FC_FAMILY, (const FcChar8 *)family);
  FcObjectSet *os = FcObjectSetBuild(FC_FAMILY, NULL);
  FcFontSet *fs = FcFontList(NULL, p, os);
  int found = fs && fs->nfont > 0;
  if (fs) FcFontSetDestroy(fs);
  FcObjectSetDestroy(os);
  FcPatternDestroy(p);
  return found;
}

const char *kd_fig_font_resolve(const char *family, char *msg, size_t len) {
  if (msg && len) msg[0] = 0;
  if (!family || !*family) return KD_FIG_DEFAULT_FONT;
  if (kd_fig_font_installed(family)) return family;
  const char *pkg = package_of(family);
  if (msg && len)
    snprintf(msg, len, "font '%s' is not installed%s%s%s; using %s", family, pkg ? " (Debian package " : "",
             pkg ? pkg : "", pkg ? ")" : "", KD_FIG_DEFAULT_FONT);
  return KD_FIG_DEFAULT_FONT;
}

const char *const *kd_fig_paper_fonts(void) {
  static const char *const fonts[] = {"DejaVu Sans", "DejaVu Serif", "Latin Modern Roman", "Latin Modern Sans",
                                      "TeX Gyre Termes", "TeX Gyre Pagella", "TeX Gyre Heros", NULL};
  return fonts;
}
