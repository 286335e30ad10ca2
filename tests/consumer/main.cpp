// Builds against an installed prunegym and uses the public API without touching LibTorch.
#include <prunegym/env/rewards.h>
#include <prunegym/env/spaces.h>

#include <iostream>

int main() {
  const auto space = prunegym::Space::discrete(prunegym::Space::grid(0.0, 2.2, 0.2));
  prunegym::RewardSetup setup;
  setup.target_accuracy = 0.9;
  setup.target_sparsity = 0.9;
  const double r = prunegym::purl_reward(0.9, 0.45, setup);
  std::cout << "actions " << space.n() << " reward " << r << "\n";
  return space.n() == 12 && r > -0.5 - 1e-12 && r < -0.5 + 1e-12 ? 0 : 1;
}
