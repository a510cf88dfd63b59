/* One pass over a Bayes-by-Backprop parameter tensor: draw S weight samples and the gradients of
 * their complexity cost; backward folds the network's gradient into mu and rho.
 *
 * Noise: eps = sqrt(2) erfinv(2u - 1), u from 24 bits of the splitmix64 hash of (key, counter),
 * so |eps| <= 5.3; erfinv by Giles' single-precision approximation (2010). Each hash gives two
 * numbers: a block of BLOCK elements takes the high bits of HALF hashes, then their low bits.
 * Prior, up to the constant log_w2 the caller adds: log p(w) = -k2 w^2 (+ softplus(gap) for the
 * scale mixture), gap = gap0 + (k2 - k1) w^2, k_j = 1 / (2 s_j^2), the wide component's
 * responsibility sigmoid(gap). A single Gaussian N(0, s^2) is mixture = 0 with k2 = 1 / (2 s^2).
 */
#include <math.h>
#include <stdint.h>

#define BLOCK 512

#define HALF (BLOCK / 2)

static inline uint64_t splitmix(uint64_t key, uint64_t counter) {
    uint64_t z = key + (counter + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The normal quantile of u = (m + 1/2) / 2^24 for the low 24 bits m of `bits`; u and 1 - u are
 * taken from m separately, so neither rounds to 0 or 1. */
static inline float normal_from_bits(uint64_t bits) {
    int32_t m = (int32_t)(bits & 0xFFFFFF);
    float below = (float)m + 0.5f, above = (float)(0xFFFFFF - m) + 0.5f; /* 2^24 u, 2^24 (1 - u) */
    float x = (below - above) * 0x1p-24f;                                 /* 2u - 1 */
    float w = -logf(below * above * 0x1p-46f);                           /* -log(4 u (1 - u)) */
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
    return 1.41421356237f * (w < 5.0f ? p : q) * x;
}

/* The quantiles the generator maps 24-bit values to (for checking it against the exact ones). */
void bbb_quantiles(int64_t n, const int32_t *bits, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = normal_from_bits((uint64_t)(uint32_t)bits[i]);
}

/* Noise of one block: the hashes of counters pair0 .. pair0 + HALF - 1. */
static inline void normal_block(uint64_t key, uint64_t pair0, float *out) {
    for (int j = 0; j < HALF; j++) {
        uint64_t z = splitmix(key, pair0 + (uint64_t)j);
        out[j] = normal_from_bits(z >> 40);
        out[j + HALF] = normal_from_bits(z >> 8);
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

/* Forward. mu, rho: n; w, eps: S x n, eps drawn as bbb_normals(n, S, key) would, times mask (n, 0 or 1; NULL:
 * none) so that a pruned weight is never sampled (its noise still counts in log q, as the unmasked draw's);
 * cost_mu, cost_rho: d(complexity)/d mu and /d rho; dsigma: sigmoid(rho). Returns sum of
 * log q - log p over samples and elements, without the constants -S n log sqrt(2 pi) and S n log_w2. */
double bbb_sample_forward(int64_t n, int32_t samples, const float *mu, const float *rho, const float *mask, uint64_t key, float *w, float *eps,
                          float *cost_mu, float *cost_rho, float *dsigma, float k1, float k2, float gap0, int32_t mixture,
                          int32_t entropy_gradient) {
    double total = 0.0;
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static) reduction(+ : total)
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t len = n - start < BLOCK ? n - start : BLOCK;
        float sigma[BLOCK], gmu[BLOCK], grho[BLOCK], noise[BLOCK];
        float block_total = 0.0f;
        for (int64_t j = 0; j < len; j++) {
            float r = rho[start + j];
            float e = expf(fminf(r, 20.0f));
            float s = r > 20.0f ? r : log1pf(e);
            sigma[j] = s;
            dsigma[start + j] = e / (1.0f + e);
            gmu[j] = 0.0f;
            grho[j] = 0.0f;
            block_total -= samples * logf(s);
        }
        for (int32_t k = 0; k < samples; k++) {
            int64_t offset = (int64_t)k * n + start;
            float *ek = eps + offset, *wk = w + offset;
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
                ek[j] = z;
                float v = mu[start + j] + sigma[j] * z;
                wk[j] = v;
                float v2 = v * v;
                float log_prior = -k2 * v2, slope = 2.0f * k2;
                if (mixture) {
                    float gap = gap0 + (k2 - k1) * v2;
                    /* e^-80 ~ 1e-35 is below float's use here, and the floor keeps the vector exp off its
                     * slow out-of-range path (most weights sit far outside the narrow component) */
                    float a = expf(fmaxf(-fabsf(gap), -80.0f));
                    log_prior += fmaxf(gap, 0.0f) + logf(1.0f + a);
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
        }
        for (int64_t j = 0; j < len; j++) {
            float entropy = entropy_gradient ? samples / sigma[j] : 0.0f;
            cost_mu[start + j] = gmu[j];
            cost_rho[start + j] = (grho[j] - entropy) * dsigma[start + j];
        }
        total += block_total;
    }
    return total;
}

/* Backward: grad_mu = sum_s g_s + gc cost_mu, grad_rho = dsigma sum_s g_s eps_s + gc cost_rho. */
void bbb_sample_backward(int64_t n, int32_t samples, const float *grad_w, const float *eps, const float *cost_mu,
                         const float *cost_rho, const float *dsigma, float grad_cost, float *grad_mu, float *grad_rho) {
    #pragma omp parallel for schedule(static)
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t len = n - start < BLOCK ? n - start : BLOCK;
        float gm[BLOCK], gr[BLOCK];
        for (int64_t j = 0; j < len; j++) { gm[j] = 0.0f; gr[j] = 0.0f; }
        for (int32_t k = 0; k < samples; k++) {
            const float *g = grad_w + (int64_t)k * n + start, *z = eps + (int64_t)k * n + start;
            for (int64_t j = 0; j < len; j++) { gm[j] += g[j]; gr[j] += g[j] * z[j]; }
        }
        for (int64_t j = 0; j < len; j++) {
            grad_mu[start + j] = gm[j] + grad_cost * cost_mu[start + j];
            grad_rho[start + j] = dsigma[start + j] * gr[j] + grad_cost * cost_rho[start + j];
        }
    }
}
