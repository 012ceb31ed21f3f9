// CPU kernel of the lns tabu search, one row at a time; the algorithm is described in
// solvers/refiners/tabu_search.py (the same search as its torch path, same tie-breaking), and the
// kernel is compiled and loaded by solvers/refiners/cpu_kernels.py.
#include <torch/extension.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace tabu {

constexpr double kInf = std::numeric_limits<double>::infinity();

// State of one row: pruned flags z (1 = pruned), c = Q z, the running loss and the tabu list.
struct Row {
  const double* w;
  const double* gram;
  const double* qd;  // q_jj = w_j^2 G_jj
  int64_t d;
  std::vector<uint8_t> z;
  std::vector<double> c;
  std::vector<int64_t> free_at;  // first step at which column j may move again
  double value = 0.0;
};

// c = w ⊙ (G (w ⊙ z)) and value = Σ_j c_j z_j, from scratch.
static void refresh(Row& r) {
  const int64_t d = r.d;
  std::vector<double> acc(d, 0.0);
  for (int64_t i = 0; i < d; ++i) {
    if (!r.z[i]) continue;
    const double ri = r.w[i];
    const double* gi = r.gram + i * d;
    double* a = acc.data();
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) a[j] += ri * gi[j];
  }
  double v = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    r.c[j] = r.w[j] * acc[j];
    if (r.z[j]) v += r.c[j];
  }
  r.value = v;
}

struct Move {
  double delta = kInf;
  int64_t a = -1, b = -1;
};

// Best allowed swap inside the groups [0, d) of size g: a pruned, b kept, both movable, or any
// pair whose loss would beat the row's best (aspiration). Ties: lowest group, then a, then b.
static Move block_step(const Row& r, int64_t g, int64_t step, double best_v, std::vector<double>& b_all,
                       std::vector<double>& b_mov) {
  const int64_t d = r.d;
  for (int64_t j = 0; j < d; ++j) {
    const double bj = r.qd[j] + 2.0 * r.c[j];
    b_all[j] = r.z[j] ? kInf : bj;
    b_mov[j] = (r.z[j] || r.free_at[j] > step) ? kInf : bj;
  }
  const double excess = r.value - best_v;
  const double aspire_below = -1e-12 * std::fabs(best_v);
  Move best;
  for (int64_t g0 = 0; g0 < d; g0 += g) {
    for (int64_t a = g0; a < g0 + g; ++a) {
      if (!r.z[a]) continue;
      const double at = r.qd[a] - 2.0 * r.c[a];
      const double wa = r.w[a];
      const double* ga = r.gram + a * d;
      double m_all = kInf, m_mov = kInf;
      int64_t b_all_arg = -1, b_mov_arg = -1;
      for (int64_t b = g0; b < g0 + g; ++b) {
        const double q = (wa * ga[b]) * r.w[b];
        const double v_all = (at + b_all[b]) - 2.0 * q;
        const double v_mov = (at + b_mov[b]) - 2.0 * q;
        if (v_all < m_all) { m_all = v_all; b_all_arg = b; }
        if (v_mov < m_mov) { m_mov = v_mov; b_mov_arg = b; }
      }
      Move cand;
      if (b_all_arg >= 0 && excess + m_all < aspire_below) {
        cand = {m_all, a, b_all_arg};
      } else if (r.free_at[a] <= step && b_mov_arg >= 0) {
        cand = {m_mov, a, b_mov_arg};
      }
      if (cand.delta < best.delta) best = cand;
    }
  }
  return best;
}

// Wide per-row rows: pair only the L movable pruned columns with the smallest q_aa − 2c_a and the
// L movable kept columns with the smallest q_bb + 2c_b (tabu columns are never candidates).
static Move narrow_step(const Row& r, int64_t step, int64_t L, std::vector<std::pair<double, int64_t>>& as,
                        std::vector<std::pair<double, int64_t>>& bs) {
  as.clear(); bs.clear();
  for (int64_t j = 0; j < r.d; ++j) {
    if (r.free_at[j] > step) continue;
    if (r.z[j]) as.emplace_back(r.qd[j] - 2.0 * r.c[j], j);
    else bs.emplace_back(r.qd[j] + 2.0 * r.c[j], j);
  }
  const int64_t la = std::min<int64_t>(L, as.size()), lb = std::min<int64_t>(L, bs.size());
  std::partial_sort(as.begin(), as.begin() + la, as.end());
  std::partial_sort(bs.begin(), bs.begin() + lb, bs.end());
  Move best;
  for (int64_t i = 0; i < la; ++i) {
    const int64_t a = as[i].second;
    const double wa2 = 2.0 * r.w[a];
    const double* ga = r.gram + a * r.d;
    for (int64_t k = 0; k < lb; ++k) {
      const int64_t b = bs[k].second;
      const double v = (as[i].first + bs[k].first) - (wa2 * ga[b]) * r.w[b];
      if (v < best.delta) best = {v, a, b};
    }
  }
  return best;
}

}  // namespace tabu

// Tabu search on the rows ``rows`` of the state (see tabu_search.py): phases p = 0..P−1 start from
// the row's best mask with tenure tenures[row, p]; a phase ends after ``steps`` steps or once the
// row found nothing better for ``patience`` steps (patience < 0: never). ``pruned`` rows are
// overwritten with the best mask visited; per searched row: its loss (float64, from scratch), the
// step (counted over all phases) at which it was found, and the steps taken. Returns 1 when
// ``seconds`` (> 0) ran out, else 0.
int64_t tabu_rows(torch::Tensor w, torch::Tensor gram, torch::Tensor pruned, int64_t group, torch::Tensor tenures,
                  int64_t steps, int64_t patience, int64_t refresh_every, int64_t candidates, double seconds,
                  torch::Tensor rows, torch::Tensor best_value, torch::Tensor improved_at, torch::Tensor steps_taken) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const int64_t d = w.size(1), phases = tenures.size(1), n = rows.size(0);
  const double* W = w.data_ptr<double>();
  const double* G = gram.data_ptr<double>();
  bool* Z = pruned.data_ptr<bool>();
  const int64_t* T = tenures.data_ptr<int64_t>();
  const int64_t* idx = rows.data_ptr<int64_t>();
  double* out_v = best_value.data_ptr<double>();
  int64_t* out_at = improved_at.data_ptr<int64_t>();
  int64_t* out_steps = steps_taken.data_ptr<int64_t>();
  const bool narrow = candidates > 0 && group == d && d > 2 * candidates;
  torch::NoGradGuard guard;
  pybind11::gil_scoped_release release;
  std::vector<double> qd(d), b_all(d), b_mov(d);
  std::vector<std::pair<double, int64_t>> as, bs;
  as.reserve(d); bs.reserve(d);
  bool out_of_time = false;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t i = idx[t];
    tabu::Row r{W + i * d, G, qd.data(), d, std::vector<uint8_t>(d), std::vector<double>(d),
                std::vector<int64_t>(d, 0)};
    for (int64_t j = 0; j < d; ++j) {
      qd[j] = r.w[j] * r.w[j] * G[j * d + j];
      r.z[j] = Z[i * d + j] ? 1 : 0;
    }
    std::vector<uint8_t> best_z = r.z;
    tabu::refresh(r);
    double best_v = r.value;
    int64_t taken = 0, found_at = 0;
    for (int64_t p = 0; p < phases && !out_of_time; ++p) {
      if (p > 0) { r.z = best_z; tabu::refresh(r); }
      std::fill(r.free_at.begin(), r.free_at.end(), 0);
      const int64_t tenure = T[i * phases + p];
      int64_t last_gain = 0;
      for (int64_t s = 1; s <= steps; ++s) {
        if (patience >= 0 && s - last_gain > patience) break;
        if (seconds > 0 && (s & 15) == 0 &&
            std::chrono::duration<double>(clock::now() - start).count() >= seconds) {
          out_of_time = true;
          break;
        }
        if (s % refresh_every == 0) tabu::refresh(r);
        const tabu::Move m = narrow ? tabu::narrow_step(r, s, candidates, as, bs)
                                    : tabu::block_step(r, group, s, best_v, b_all, b_mov);
        if (!(m.delta < tabu::kInf)) break;
        r.z[m.a] = 0; r.z[m.b] = 1;
        const double wa = r.w[m.a], wb = r.w[m.b];
        const double* ga = G + m.a * d;
        const double* gb = G + m.b * d;
        double* c = r.c.data();
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) c[j] += (r.w[j] * gb[j]) * wb - (r.w[j] * ga[j]) * wa;
        r.value += m.delta;
        r.free_at[m.a] = s + tenure;
        r.free_at[m.b] = s + tenure;
        ++taken;
        if (r.value < best_v - 1e-12 * std::fabs(best_v)) {
          best_z = r.z; best_v = r.value; found_at = taken; last_gain = s;
        }
      }
    }
    r.z = best_z;
    tabu::refresh(r);
    for (int64_t j = 0; j < d; ++j) Z[i * d + j] = best_z[j] != 0;
    out_v[t] = r.value;
    out_at[t] = found_at;
    out_steps[t] = taken;
  }
  return out_of_time ? 1 : 0;
}
