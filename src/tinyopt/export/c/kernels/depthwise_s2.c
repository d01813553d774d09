/* DEPTHWISE_CONV_2D on the Cortex-M4 pair loop with a stride of 2 (ops/conv_2d.py gives such layers this
 * entry): the loop's variants with output rows two input rows apart and, for lone rows, neighbouring output
 * columns two input columns apart. A file of its own: libraries whose depthwise layers all have stride 1
 * do not carry them. */
#include "tinyopt_depthwise_conv2d.h"
#include "tinyopt_kernels.h"

#if defined(TINYOPT_HAVE_MM2X2_ASM)
#if !defined(TINYOPT_DW_NO_ROWS)
__asm__(TINYOPT_DWP_FUNCTION("tinyopt_dwp2", "8", TINYOPT_DWP_COPY, "1:\n\t", ""));
#endif
#if defined(TINYOPT_DW_COLUMNS)
__asm__(TINYOPT_DWP_FUNCTION("tinyopt_dwc2", "40", TINYOPT_DWC_COPY, TINYOPT_DWS_SKIP, TINYOPT_DWS_TAIL));
#endif
#endif

void tinyopt_depthwise_conv2d_s2(const tinyopt_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch,
                                 int8_t *col, int reverse, const int8_t *other)
{
#if defined(TINYOPT_HAVE_MM2X2_ASM)
    static const tinyopt_dw_loops loops = {{TINYOPT_DW_ROWS(tinyopt_dwp1), TINYOPT_DW_ROWS(tinyopt_dwp2)},
                                           {TINYOPT_DW_COLS(tinyopt_dwc1), TINYOPT_DW_COLS(tinyopt_dwc2)}};
    tinyopt_depthwise_conv2d_run(p, in, out, scratch, col, reverse, other, &loops);
#else
    tinyopt_depthwise_conv2d_run(p, in, out, scratch, col, reverse, other, NULL);
#endif
}
