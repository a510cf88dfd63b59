/* One pass over a Bayes-by-Backprop parameter tensor: draw S weight samples and the gradients of
 * their complexity cost; backward folds the network's gradient into mu and rho.
 *
 * Noise: eps = sqrt(2) erfinv(2u - 1), u from 24 bits of the splitmix64 hash of (key, counter),
 * so |eps| <= 5.3; erfinv by Giles' single-precision approximation (2010). Each hash gives two
 * numbers: a block of BLOCK elements takes the high bits of HALF hashes, then their low bits.
 * Prior, up to the constant log_w2 the caller adds: log p(w) = -k2 w^2 (+ softplus(gap) for the
 * scale mixture), gap = gap0 + (k2 - k1) w^2, k_j = 1 / (2 s_j^2), the wide component's
 * responsibility sigmoid(gap). A single Gaussian N(0, s^2) is mixture = 0 with k2 = 1 / (2 s^2).
 * The noise's, the prior's and softplus's log and exp are inline polynomials (a few ulp), so that every
 * loop vectorises without a library call; the samples are kept, and backward reads eps back as (w - mu) / sigma.
 */
#include <math.h>
#include <stdint.h>

#define BLOCK 512

#define HALF (BLOCK / 2)
#define LANES 16

static inline uint64_t splitmix(uint64_t key, uint64_t counter) {
    uint64_t z = key + (counter + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* log(1 + f) for -1/3 <= f < 1/3, to about 2 ulp: a polynomial fitted to it there. */
static inline float log1p_small(float f) {
    float q = 0.134636223f;
    q = -0.151314527f + q * f;
    q = 0.141166434f + q * f;
    q = -0.164706454f + q * f;
    q = 0.200033069f + q * f;
    q = -0.250043124f + q * f;
    q = 0.333333462f + q * f;
    return f - 0.5f * f * f + f * f * f * q;
}

/* log x for a positive normal float x, to about 2 ulp where |log x| > 1e-3 (and 1e-10 absolute nearer x = 1):
 * x = 2^e m with m in [2/3, 4/3), log(1 + f) for f = m - 1 by log1p_small. Inline, so that the loops that call
 * it vectorise without a library call. */
static inline float log_normal(float x) {
    union { float f; int32_t i; } bits = { x };
    int32_t e = (bits.i - 0x3f2aaaab) >> 23; /* 0x3f2aaaab: 2/3 */
    bits.i -= (int32_t)((uint32_t)e << 23);
    float f = bits.f - 1.0f;
    return (float)e * 0.693359375f + ((float)e * -2.12194440e-4f + log1p_small(f)); /* ln 2 in two parts */
}

/* e^x for -87 <= x <= 88 (clamped there), to about 5 ulp: x = n ln 2 + f with |f| <= ln 2 / 2, e^f by its Taylor
 * series to f^7, times 2^n put into the exponent bits. Inline, like log_normal. */
static inline float exp_clamped(float x) {
    x = fminf(fmaxf(x, -87.0f), 88.0f);
    float n = roundf(x * 1.44269504f);
    float f = (x - n * 0.693359375f) - n * -2.12194440e-4f; /* ln 2 in two parts */
    float p = 1.0f / 5040.0f;
    p = 1.0f / 720.0f + p * f;
    p = 1.0f / 120.0f + p * f;
    p = 1.0f / 24.0f + p * f;
    p = 1.0f / 6.0f + p * f;
    p = 0.5f + p * f;
    p = 1.0f + p * f;
    p = 1.0f + p * f;
    union { float f; int32_t i; } bits = { p };
    bits.i += (int32_t)n << 23;
    return bits.f;
}

/* softplus(r) = log(1 + e^r) for r <= 20, to about 7 ulp: log1p_small where e^r < 1/3, so that 1 + e^r is
 * never rounded there. */
static inline float softplus_below_20(float r, float e) {
    return e < 0.33333333f ? log1p_small(e) : log_normal(1.0f + e);
}

/* sum_j log x_j for 1 <= x_j <= 2, j < len <= BLOCK: the logs of LANES products of at most BLOCK / LANES
 * factors each (below 2^32), so that one log serves many terms. */
static inline float log_sum(const float *x, int64_t len) {
    float product[LANES];
    for (int l = 0; l < LANES; l++) product[l] = 1.0f;
    int64_t whole = len - len % LANES;
    for (int64_t j0 = 0; j0 < whole; j0 += LANES)
        for (int l = 0; l < LANES; l++) product[l] *= x[j0 + l];
    for (int64_t j = whole; j < len; j++) product[j - whole] *= x[j];
    float sum = 0.0f;
    for (int l = 0; l < LANES; l++) sum += log_normal(product[l]);
    return sum;
}

/* The normal quantile of u = (m + 1/2) / 2^24 for the low 24 bits m of `bits`; u and 1 - u are
 * taken from m separately, so neither rounds to 0 or 1. Where the tail's w >= 5 (about 1 draw in 300),
 * the central polynomial is wrong and *tail is set: `tail_quantile` gives the value there. */
static inline float central_quantile(uint64_t bits, int *tail) {
    int32_t m = (int32_t)(bits & 0xFFFFFF);
    float below = (float)m + 0.5f, above = (float)(0xFFFFFF - m) + 0.5f; /* 2^24 u, 2^24 (1 - u) */
    float x = (below - above) * 0x1p-24f;                                 /* 2u - 1 */
    float w = -log_normal(below * above * 0x1p-46f);                     /* -log(4 u (1 - u)) */
    float c = w - 2.5f;
    float p = 2.81022636e-08f;
    p = 3.43273939e-07f + p * c;
    p = -3.5233877e-06f + p * c;
    p = -4.39150654e-06f + p * c;
    p = 0.00021858087f + p * c;
    p = -0.00125372503f + p * c;
    p = -0.00417768164f + p * c;
    p = 0.246640727f + p * c;
    p = 1.50140941f + p * c;
    *tail = w >= 5.0f;
    return 1.41421356237f * p * x;
}

/* The quantile where central_quantile set *tail: Giles' tail polynomial in sqrt(w). */
static float tail_quantile(uint64_t bits) {
    int32_t m = (int32_t)(bits & 0xFFFFFF);
    float below = (float)m + 0.5f, above = (float)(0xFFFFFF - m) + 0.5f;
    float x = (below - above) * 0x1p-24f;
    float w = -log_normal(below * above * 0x1p-46f);
    float t = sqrtf(w) - 3.0f;
    float q = -0.000200214257f;
    q = 0.000100950558f + q * t;
    q = 0.00134934322f + q * t;
    q = -0.00367342844f + q * t;
    q = 0.00573950773f + q * t;
    q = -0.0076224613f + q * t;
    q = 0.00943887047f + q * t;
    q = 1.00167406f + q * t;
    q = 2.83297682f + q * t;
    return 1.41421356237f * q * x;
}

static inline float normal_from_bits(uint64_t bits) {
    int tail;
    float z = central_quantile(bits, &tail);
    return tail ? tail_quantile(bits) : z;
}

/* The quantiles the generator maps 24-bit values to (for checking it against the exact ones). */
void bbb_quantiles(int64_t n, const int32_t *bits, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = normal_from_bits((uint64_t)(uint32_t)bits[i]);
}

/* Noise of one block: the hashes of counters pair0 .. pair0 + HALF - 1; the central quantile for all,
 * vectorised, then the rare tail values one by one. */
static inline void normal_block(uint64_t key, uint64_t pair0, float *out) {
    unsigned char tail[BLOCK];
    for (int j = 0; j < HALF; j++) {
        uint64_t z = splitmix(key, pair0 + (uint64_t)j);
        int high, low;
        out[j] = central_quantile(z >> 40, &high);
        out[j + HALF] = central_quantile(z >> 8, &low);
        tail[j] = (unsigned char)high;
        tail[j + HALF] = (unsigned char)low;
    }
    for (int g = 0; g < BLOCK; g += 64) {
        uint64_t any = 0;
        for (int j = g; j < g + 64; j++) any |= tail[j];
        if (!any) continue;
        for (int j = g; j < g + 64; j++)
            if (tail[j]) {
                uint64_t z = splitmix(key, pair0 + (uint64_t)(j % HALF));
                out[j] = tail_quantile(j < HALF ? z >> 40 : z >> 8);
            }
    }
}

/* Standard normal noise, samples x n, exactly as bbb_sample_forward draws it for `key`. */
void bbb_normals(int64_t n, int32_t samples, uint64_t key, float *out) {
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks * samples; b++) {
        int64_t k = b / blocks, start = (b % blocks) * BLOCK, len = n - start < BLOCK ? n - start : BLOCK;
        float noise[BLOCK];
        normal_block(key, (uint64_t)b * HALF, noise);
        for (int64_t j = 0; j < len; j++) out[k * n + start + j] = noise[j];
    }
}

/* Forward. mu, rho: n; w: S x n, mu + sigma eps with eps drawn as bbb_normals(n, S, key) would, times mask (n, 0 or 1;
 * NULL: none) so that a pruned weight is never sampled (its noise still counts in log q, as the unmasked draw's);
 * cost_mu, cost_rho: d(complexity)/d mu and /d rho; slope: sigmoid(rho) / sigma, which turns w - mu into
 * d w / d rho for the backward pass (eps is not stored: backward reads it back from w). Returns sum of
 * log q - log p over samples and elements, without the constants -S n log sqrt(2 pi) and S n log_w2. */
double bbb_sample_forward(int64_t n, int32_t samples, const float *mu, const float *rho, const float *mask, uint64_t key, float *w,
                          float *cost_mu, float *cost_rho, float *slope_rho, float k1, float k2, float gap0, int32_t mixture,
                          int32_t entropy_gradient) {
    double total = 0.0;
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static) reduction(+ : total)
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t len = n - start < BLOCK ? n - start : BLOCK;
        float sigma[BLOCK], dsigma[BLOCK], gmu[BLOCK], grho[BLOCK], noise[BLOCK], spread[BLOCK];
        float block_total = 0.0f;
        for (int64_t j = 0; j < len; j++) {
            float r = rho[start + j];
            float e = exp_clamped(fminf(r, 20.0f));
            float s = r > 20.0f ? r : softplus_below_20(r, e);
            float slope = e / ((1.0f + e) * s); /* sigmoid(rho) / sigma in one division */
            sigma[j] = s;
            dsigma[j] = slope * s;
            slope_rho[start + j] = slope;
            gmu[j] = 0.0f;
            grho[j] = 0.0f;
            block_total -= samples * log_normal(fmaxf(s, 0x1p-126f)); /* s >= the smallest normal float: log stays finite */
        }
        for (int32_t k = 0; k < samples; k++) {
            int64_t offset = (int64_t)k * n + start;
            float *wk = w + offset;
            normal_block(key, (uint64_t)(k * blocks + start / BLOCK) * HALF, noise);
            if (mask) { /* a pass of its own: a test inside the loop below would keep it from vectorising */
                for (int64_t j = 0; j < len; j++) {
                    float z = noise[j], m = mask[start + j];
                    block_total -= 0.5f * z * z * (1.0f - m); /* the pruned weights' noise, counted in log q */
                    noise[j] = z * m;
                }
            }
            for (int64_t j = 0; j < len; j++) {
                float z = noise[j];
                float v = mu[start + j] + sigma[j] * z;
                wk[j] = v;
                float v2 = v * v;
                float log_prior = -k2 * v2, slope = 2.0f * k2;
                if (mixture) {
                    float gap = gap0 + (k2 - k1) * v2;
                    /* e^-80 ~ 1e-35 is below float's use here (most weights sit far outside the narrow component) */
                    float a = exp_clamped(fmaxf(-fabsf(gap), -80.0f));
                    log_prior += fmaxf(gap, 0.0f);
                    spread[j] = 1.0f + a; /* log(1 + a) is summed below, as logs of products */
                    /* each responsibility directly: 2 k2 + 2 (k1 - k2) wide loses 1 % to cancellation at wide ~ 1 */
                    float inv = 1.0f / (1.0f + a);
                    float wide = gap >= 0.0f ? inv : a * inv, narrow = gap >= 0.0f ? a * inv : inv;
                    slope = 2.0f * (k1 * wide + k2 * narrow);
                }
                float g = slope * v; /* -d log p / dw */
                gmu[j] += g;
                grho[j] += g * z;
                block_total -= 0.5f * z * z + log_prior;
            }
            if (mixture) block_total -= log_sum(spread, len);
        }
        for (int64_t j = 0; j < len; j++) {
            float entropy = entropy_gradient ? samples / sigma[j] : 0.0f;
            cost_mu[start + j] = gmu[j];
            cost_rho[start + j] = (grho[j] - entropy) * dsigma[j];
        }
        total += block_total;
    }
    return total;
}

/* Backward: grad_mu = sum_s g_s + gc cost_mu, grad_rho = slope_rho sum_s g_s (w_s - mu) + gc cost_rho. grad_mu and
 * grad_rho may be cost_mu and cost_rho themselves (each element is read before it is written). */
void bbb_sample_backward(int64_t n, int32_t samples, const float *grad_w, const float *w, const float *mu, const float *cost_mu,
                         const float *cost_rho, const float *slope_rho, float grad_cost, float *grad_mu, float *grad_rho) {
    #pragma omp parallel for schedule(static)
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t len = n - start < BLOCK ? n - start : BLOCK;
        float gm[BLOCK], gr[BLOCK];
        for (int64_t j = 0; j < len; j++) { gm[j] = 0.0f; gr[j] = 0.0f; }
        for (int32_t k = 0; k < samples; k++) {
            const float *g = grad_w + (int64_t)k * n + start, *v = w + (int64_t)k * n + start;
            for (int64_t j = 0; j < len; j++) { gm[j] += g[j]; gr[j] += g[j] * (v[j] - mu[start + j]); }
        }
        for (int64_t j = 0; j < len; j++) {
            grad_mu[start + j] = gm[j] + grad_cost * cost_mu[start + j];
            grad_rho[start + j] = slope_rho[start + j] * gr[j] + grad_cost * cost_rho[start + j];
        }
    }
}
