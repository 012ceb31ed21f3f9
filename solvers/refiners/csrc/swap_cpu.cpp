// Fused CPU kernel of the exact best 1-swap per row; the algorithm is described in
// solvers/refiners/swap_cpp.py, which compiles and loads this file.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <limits>
#include <vector>

// exact min_p (b_p + coef * w_p * g_p) over all p (inf entries of b are kept columns' complement)
template <typename T>
static inline T row_min(const T* bi, const T* wi, const T* g, T coef, int64_t d) {
  T m = std::numeric_limits<T>::infinity();
#pragma omp simd reduction(min : m)
  for (int64_t p = 0; p < d; ++p) {
    const T v = bi[p] + coef * wi[p] * g[p];
    m = v < m ? v : m;
  }
  return m;
}

template <typename T>
static inline int64_t row_argmin(const T* bi, const T* wi, const T* g, T coef, int64_t d, T m) {
  // first p attaining the SIMD minimum m (same expression, no FP contraction: bit-identical values)
  for (int64_t p = 0; p < d; ++p) {
    const T v = bi[p] + coef * wi[p] * g[p];
    if (v == m) return p;
  }
  T best = std::numeric_limits<T>::infinity(); int64_t arg = -1;
  for (int64_t p = 0; p < d; ++p) {
    const T v = bi[p] + coef * wi[p] * g[p];
    if (v < best) { best = v; arg = p; }
  }
  return arg;
}

// Lower bound LB_u = a_u + min_{p in K} (b_p - 2 s_p t_u), t_u = rho_u s_u, via the lower envelope
// of the lines y = b_p - 2 s_p t (added in increasing s, i.e. decreasing slope), minus a rounding
// slack. Double precision; hm/hc are scratch buffers.
template <typename T>
static void envelope_bounds(const T* S, const T* bi, const T* ai, const T* R, const int32_t* order, int64_t d,
                            double rel, double* lb, std::vector<double>& hm, std::vector<double>& hc,
                            std::vector<double>& tbuf, std::vector<int32_t>& lines) {
  hm.clear(); hc.clear();
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<double>& t = tbuf;
  if ((int64_t)t.size() < d) t.resize(d);
  // queries are t_u = rho_u s_u over pruned u; a line can touch the envelope on [0, t_max] only if
  // b_p - 2 s_p t_max <= min_q b_q (the envelope never exceeds min_q b_q for t >= 0)
  double t_max = 0.0, b_min = INFINITY;
#pragma omp simd reduction(max : t_max) reduction(min : b_min)
  for (int64_t u = 0; u < d; ++u) {
    t[u] = double(R[u]) * double(S[u]);
    const double tu = ai[u] < inf ? t[u] : 0.0;
    t_max = tu > t_max ? tu : t_max;
    const double bu = double(bi[u]);
    b_min = bu < b_min ? bu : b_min;
  }
  // The lines that can shape the envelope, found in one pass down the order (decreasing s): a line
  // is dropped if it cannot touch the envelope on [0, t_max], or if a line later in the order has
  // b <= its b while every later line has s >= its s (that line is then below it for all t >= 0;
  // the second test keeps this valid where ``order`` disagrees with s by rounding). Selects instead
  // of branches (kept and pruned columns alternate at random down the order, so branches on them are
  // mispredicted: sweeps 4-9 % faster on real layers), and no hull bookkeeping for every kept column.
  if ((int64_t)lines.size() < d) lines.resize(d);
  int32_t* kept_lines = lines.data();
  int64_t n_lines = 0;
  double run_b = INFINITY, run_s = INFINITY;  // min b, min s over the kept columns later in the order
  for (int64_t q = d - 1; q >= 0; --q) {
    const int32_t p = order[q];
    const double bp = double(bi[p]);
    const double sp = double(S[p]);
    const bool kept = bp < inf;  // a pruned column has no line
    const double lo = bp - 2.0 * sp * t_max;
    const bool take = kept & (lo <= b_min) & !((run_b <= bp) & (sp <= run_s));
    kept_lines[n_lines] = p;
    n_lines += take;
    run_b = bp < run_b ? bp : run_b;
    run_s = (kept & (sp < run_s)) ? sp : run_s;
  }
  for (int64_t li = n_lines - 1; li >= 0; --li) {
    const int64_t p = kept_lines[li];
    double m = -2.0 * double(S[p]);
    const double c = double(bi[p]);
    // ``order`` may disagree with s by rounding; for t >= 0 lowering the slope to the previous
    // one only lowers the line, so the envelope stays a valid lower bound.
    if (!hm.empty() && m > hm.back()) m = hm.back();
    if (!hm.empty() && hm.back() == m) {
      if (hc.back() <= c) continue;
      hm.pop_back(); hc.pop_back();
    }
    while (hm.size() >= 2) {
      const size_t k = hm.size();
      // line k-1 is useless if the new line meets line k-2 no later than line k-1 does
      // (both slope differences are positive, so compare cross-multiplied)
      const double lhs = (c - hc[k - 2]) * (hm[k - 2] - hm[k - 1]);
      const double rhs = (hc[k - 1] - hc[k - 2]) * (hm[k - 2] - m);
      if (lhs <= rhs) { hm.pop_back(); hc.pop_back(); } else break;
    }
    hm.push_back(m); hc.push_back(c);
  }
  const size_t h = hm.size();
  // evaluate the envelope line by line, vectorised over u (no per-u horizontal reductions)
  double* env = lb;  // reuse the output buffer for the envelope values
  for (int64_t u = 0; u < d; ++u) env[u] = INFINITY;
  for (size_t k = 0; k < h; ++k) {
    const double mk = hm[k], ck = hc[k];
#pragma omp simd
    for (int64_t u = 0; u < d; ++u) { const double v = mk * t[u] + ck; env[u] = v < env[u] ? v : env[u]; }
  }
#pragma omp simd
  for (int64_t u = 0; u < d; ++u) {
    const double au = double(ai[u]), su = double(S[u]), e = env[u];
    const double v = au + e - rel * (std::fabs(au) + std::fabs(e) + 2.0 * su * su + 1e-300);
    lb[u] = (ai[u] < inf && h > 0) ? v : INFINITY;
  }
}

template <typename T>
static inline void rank_two(T* ci, const T* gp, const T* gu, T wp, T wu, int64_t d) {
#pragma omp simd
  for (int64_t q = 0; q < d; ++q) ci[q] += wp * gp[q] - wu * gu[q];
}

template <typename T>
static void rows_block(const T* W, bool* K, T* C, const T* G, const T* D, const T* R,
                       const T* S, const int32_t* O, const int64_t* rows, const double* thr, bool use_bounds,
                       double rel, int64_t r0, int64_t r1, int64_t d, T* outv, int64_t* outu, int64_t* outp,
                       double* loss, bool* applied, int64_t* evaluated) {
  // positions r0..r1 of ``rows`` (state row indices) are searched; outputs go to those positions.
  // thr (per position, or nullptr = +inf): a column u is evaluated only if its bound is below both
  // the best value found so far and thr, so the exact minimum is returned whenever it is below thr;
  // otherwise some value >= thr (+inf when nothing was evaluated) -- the row has no swap below thr.
  // applied (per position, or nullptr): a row whose best value is below thr (compared in double)
  // takes its swap at once -- c += w_p G[p, :] - w_u G[u, :], keep flipped, loss += value -- while the
  // row is still in cache; rows are distinct, so no other block reads or writes it.
  const int64_t n = r1 - r0;
  const T inf = std::numeric_limits<T>::infinity();
  // per-thread scratch reused across calls (no page faults from fresh allocations)
  static thread_local std::vector<T> a, b;
  static thread_local std::vector<double> lb, hm, hc, tbuf;
  static thread_local std::vector<int32_t> lines;
  if ((int64_t)a.size() < n * d) { a.resize(n * d); b.resize(n * d); lb.resize(n * d); }
  hm.reserve(256); hc.reserve(256);
  std::vector<T> best(n, inf), best_m(n, inf);  // best_m: the row minimum of the best u (argmin found at the end)
  std::vector<int64_t> bu(n, -1), bp(n, -1);
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ri = rows[r0 + i];
    const T* wi = W + ri * d;
    const T* ci = C + ri * d;
    const bool* ki = K + ri * d;
    T* bi = b.data() + i * d;
    T* ai = a.data() + i * d;
    const uint8_t* kb = reinterpret_cast<const uint8_t*>(ki);
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) {
      const T s2 = wi[j] * wi[j] * D[j];
      const T wc = T(2) * wi[j] * ci[j];
      const T kf = T(kb[j]);  // 1 = kept, 0 = pruned (branch-free select, vectorises)
      const T bv = s2 + wc, av = s2 - wc;
      bi[j] = kf != T(0) ? bv : inf;
      ai[j] = kf != T(0) ? inf : av;
    }
    double* lbi = lb.data() + i * d;
    if (use_bounds) {
      envelope_bounds<T>(S + ri * d, bi, ai, R, O + ri * d, d, rel, lbi, hm, hc, tbuf, lines);
    } else {
      for (int64_t j = 0; j < d; ++j) lbi[j] = ai[j] < inf ? -INFINITY : INFINITY;
    }
    // incumbent: the column with the smallest bound, evaluated exactly (unless even it cannot reach thr)
    int64_t u0 = -1; double l0 = INFINITY;
    for (int64_t j = 0; j < d; ++j) if (lbi[j] < l0 || (u0 < 0 && lbi[j] < INFINITY)) { l0 = lbi[j]; u0 = j; }
    if (u0 >= 0 && thr != nullptr && !(l0 < thr[r0 + i])) u0 = -1;
    if (u0 >= 0) {
      const T coef = T(-2) * wi[u0];
      const T m = row_min(bi, wi, G + u0 * d, coef, d);
      ++count;
      if (m < inf) { best[i] = ai[u0] + m; bu[i] = u0; best_m[i] = m; }
      lbi[u0] = INFINITY;
    }
  }
  for (int64_t u = 0; u < d; ++u) {
    const T* g = G + u * d;
    for (int64_t i = 0; i < n; ++i) {
      const double cut = thr == nullptr ? double(best[i]) : std::min(double(best[i]), thr[r0 + i]);
      if (!(lb[i * d + u] < cut)) continue;
      const T* bi = b.data() + i * d;
      const T* wi = W + rows[r0 + i] * d;
      const T coef = T(-2) * wi[u];
      const T au = a[i * d + u];
      ++count;
      const T m = row_min(bi, wi, g, coef, d);
      if (au + m < best[i]) { best[i] = au + m; bu[i] = u; best_m[i] = m; }
    }
  }
  // the lowest p attaining the best u's minimum, once per row (b is unchanged during the search)
  for (int64_t i = 0; i < n; ++i) {
    if (bu[i] < 0) continue;
    const T* wi = W + rows[r0 + i] * d;
    bp[i] = row_argmin(b.data() + i * d, wi, G + bu[i] * d, T(-2) * wi[bu[i]], d, best_m[i]);
  }
  for (int64_t i = 0; i < n; ++i) {
    outv[r0 + i] = best[i]; outu[r0 + i] = bu[i] < 0 ? 0 : bu[i]; outp[r0 + i] = bp[i] < 0 ? 0 : bp[i];
  }
  if (applied != nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      const bool take = bu[i] >= 0 && double(best[i]) < thr[r0 + i];
      applied[r0 + i] = take;
      if (!take) continue;
      const int64_t ri = rows[r0 + i], uu = bu[i], pq = bp[i];
      rank_two<T>(C + ri * d, G + pq * d, G + uu * d, W[ri * d + pq], W[ri * d + uu], d);
      K[ri * d + uu] = true;
      K[ri * d + pq] = false;
      loss[ri] += double(best[i]);
    }
  }
  *evaluated = count;
}

int64_t best_swaps(torch::Tensor W, torch::Tensor K, torch::Tensor C, torch::Tensor G, torch::Tensor D,
                   torch::Tensor R, torch::Tensor S, torch::Tensor O, torch::Tensor rows, torch::Tensor thr,
                   bool use_bounds, double rel, int64_t row_block, torch::Tensor out_v, torch::Tensor out_u,
                   torch::Tensor out_p, torch::Tensor loss, torch::Tensor applied) {
  // applied (bool, one per searched row) and loss (float64, one per state row), or both empty: with
  // them, every row whose best swap is below its threshold takes it (see rows_block)
  TORCH_CHECK(W.dim() == 2 && W.is_contiguous() && K.is_contiguous() && C.is_contiguous()
              && G.is_contiguous() && D.is_contiguous() && R.is_contiguous() && S.is_contiguous()
              && O.is_contiguous() && rows.is_contiguous() && out_v.is_contiguous() && out_u.is_contiguous()
              && out_p.is_contiguous(), "contiguous inputs expected");
  TORCH_CHECK(K.scalar_type() == torch::kBool && O.scalar_type() == torch::kInt
              && rows.scalar_type() == torch::kLong, "keep bool, order int32, rows int64");
  const int64_t r = rows.numel(), d = W.size(1), n_state = W.size(0);
  const int64_t* Rows = rows.data_ptr<int64_t>();
  for (int64_t i = 0; i < r; ++i) TORCH_CHECK(Rows[i] >= 0 && Rows[i] < n_state, "row index out of range");
  TORCH_CHECK(out_v.numel() == r && out_u.numel() == r && out_p.numel() == r, "output sizes");
  TORCH_CHECK(thr.numel() == 0 || (thr.numel() == r && thr.scalar_type() == torch::kDouble && thr.is_contiguous()),
              "thresholds: none, or float64, one per searched row");
  const double* Tp = thr.numel() ? thr.data_ptr<double>() : nullptr;
  const bool apply = applied.numel() > 0;
  TORCH_CHECK(!apply || (Tp != nullptr && applied.numel() == r && applied.scalar_type() == torch::kBool
                         && applied.is_contiguous() && loss.numel() == n_state
                         && loss.scalar_type() == torch::kDouble && loss.is_contiguous()),
              "applying swaps needs thresholds, one flag per searched row and one float64 loss per state row");
  if (apply) {  // two blocks must never update the same row
    std::vector<uint8_t> seen(n_state, 0);
    for (int64_t i = 0; i < r; ++i) { TORCH_CHECK(!seen[Rows[i]], "rows must be distinct to apply swaps"); seen[Rows[i]] = 1; }
  }
  double* Lp = apply ? loss.data_ptr<double>() : nullptr;
  bool* Ap = apply ? applied.data_ptr<bool>() : nullptr;
  const int64_t nb = (r + row_block - 1) / row_block;
  int64_t total = 0;
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "best_swaps", [&] {
    const scalar_t* Wp = W.data_ptr<scalar_t>();
    bool* Kp = K.data_ptr<bool>();
    scalar_t* Cp = C.data_ptr<scalar_t>();
    const scalar_t* Gp = G.data_ptr<scalar_t>();
    const scalar_t* Dp = D.data_ptr<scalar_t>();
    const scalar_t* Rp = R.data_ptr<scalar_t>();
    const scalar_t* Sp = use_bounds ? S.data_ptr<scalar_t>() : nullptr;
    const int32_t* Op = O.data_ptr<int32_t>();
    scalar_t* vp = out_v.data_ptr<scalar_t>();
    int64_t* up = out_u.data_ptr<int64_t>();
    int64_t* pp = out_p.data_ptr<int64_t>();
    pybind11::gil_scoped_release no_gil;
    // torch's intra-op threads take blocks of rows from a shared counter (dynamic: rows differ in
    // cost); each block writes only its own outputs, so the result does not depend on the threads
    std::atomic<int64_t> next{0}, count{0};
    at::parallel_for(0, std::min<int64_t>(nb, at::get_num_threads()), 1, [&](int64_t, int64_t) {
      int64_t mine = 0;
      for (int64_t blk = next++; blk < nb; blk = next++) {
        const int64_t r0 = blk * row_block, r1 = std::min(r, r0 + row_block);
        int64_t ev = 0;
        rows_block<scalar_t>(Wp, Kp, Cp, Gp, Dp, Rp, Sp, Op, Rows, Tp, use_bounds, rel, r0, r1, d, vp, up, pp,
                             Lp, Ap, &ev);
        mine += ev;
      }
      count += mine;
    });
    total = count.load();
  });
  return total;
}

// Order-preserving unsigned key of x: a < b as numbers iff key(a) < key(b); -0.0 gets +0.0's key
// (they are equal numbers) and every NaN the largest key (torch sorts NaN last).
template <typename T, typename U>
static inline U sort_key(T x) {
  if (x != x) return ~U(0);
  if (x == T(0)) x = T(0);
  U bits;
  std::memcpy(&bits, &x, sizeof(U));
  const U sign = U(1) << (8 * sizeof(U) - 1);
  return (bits & sign) ? ~bits : (bits | sign);
}

// One row's stable ascending argsort by an LSD radix sort, one byte of the key per pass (the
// histograms of all bytes counted in one read of the keys); a pass whose byte is the same for every
// column would move nothing and is skipped.
template <typename T, typename U>
static void radix_argsort_row(const T* x, int64_t d, int32_t* out, std::vector<U>& keys, std::vector<U>& keys2,
                              std::vector<int32_t>& idx2, std::vector<int32_t>& hist) {
  constexpr int bytes = sizeof(U);
  keys.resize(d); keys2.resize(d); idx2.resize(d); hist.assign(bytes * 256, 0);
  int32_t* h = hist.data();
  for (int64_t j = 0; j < d; ++j) {
    const U k = sort_key<T, U>(x[j]);
    keys[j] = k; out[j] = int32_t(j);
    for (int byte = 0; byte < bytes; ++byte) ++h[byte * 256 + int((k >> (8 * byte)) & 255u)];
  }
  U* ka = keys.data(); U* kb = keys2.data();
  int32_t* ia = out; int32_t* ib = idx2.data();
  for (int byte = 0; byte < bytes; ++byte) {
    int32_t* start = h + byte * 256;
    bool trivial = false;
    for (int v = 0; v < 256; ++v) trivial |= start[v] == d;
    if (trivial) continue;
    int32_t sum = 0;
    for (int v = 0; v < 256; ++v) { const int32_t c = start[v]; start[v] = sum; sum += c; }
    const unsigned shift = 8 * byte;
    for (int64_t j = 0; j < d; ++j) {
      const int32_t pos = start[(ka[j] >> shift) & 255u]++;
      kb[pos] = ka[j]; ib[pos] = ia[j];
    }
    std::swap(ka, kb); std::swap(ia, ib);
  }
  if (ia != out) std::memcpy(out, ia, sizeof(int32_t) * d);
}

// out[i] = the columns of row i in ascending order of x[i] (stable: equal values keep column order),
// the permutation of torch.argsort(x, dim=1, stable=True); rows on torch's intra-op threads.
void column_order(torch::Tensor X, torch::Tensor out) {
  TORCH_CHECK(X.dim() == 2 && X.is_contiguous() && out.is_contiguous() && out.sizes() == X.sizes()
              && out.scalar_type() == torch::kInt, "column_order: contiguous [rows, d] input and int32 output");
  const int64_t n = X.size(0), d = X.size(1);
  TORCH_CHECK(d < (int64_t(1) << 31), "column_order: too many columns for int32 indices");
  int32_t* Op = out.data_ptr<int32_t>();
  AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "column_order", [&] {
    using key_t = std::conditional_t<sizeof(scalar_t) == 4, uint32_t, uint64_t>;
    const scalar_t* Xp = X.data_ptr<scalar_t>();
    pybind11::gil_scoped_release no_gil;
    at::parallel_for(0, n, 16, [&](int64_t b, int64_t e) {
      std::vector<key_t> keys, keys2;
      std::vector<int32_t> idx2, hist;
      for (int64_t i = b; i < e; ++i) {
        radix_argsort_row<scalar_t, key_t>(Xp + i * d, d, Op + i * d, keys, keys2, idx2, hist);
      }
    });
  });
}
