// Prune your own PyTorch model from C++: load a config whose network is a TorchScript file, prune
// every layer with one alpha, fine-tune, and write the pruned model back as TorchScript.
//
//   /usr/bin/python3 python/export_model.py resnet18 models/resnet18-fashion.pt --channels 1 --classes 10
//   build/bin/example_prune_torchscript configs/torchscript-resnet18-fashion.json 0.8 models/pruned.pt
//
// Python then opens the result with torch.jit.load("models/pruned.pt").
#include <prunegym/env/prune_env.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: example_prune_torchscript CONFIG.json ALPHA OUT.pt\n";
    return 2;
  }
  try {
    prunegym::PruneEnv env(prunegym::Config::load(argv[1]));
    const double alpha = std::stod(argv[2]);
    env.apply_values(std::vector<double>(env.episode_layers().size(), alpha));
    std::cout << "pruned " << env.episode_layers().size() << " layers to sparsity " << env.network().sparsity()
              << ", test accuracy " << env.test_accuracy() << " (dense " << env.dense().test_accuracy << ")\n";
    env.finetune(prunegym::TrainOptions().set_epochs(1).set_batch_size(128));
    std::cout << "fine-tuned: test accuracy " << env.test_accuracy() << "\n";
    env.save_network(argv[3]);
    std::cout << "wrote " << argv[3] << " (TorchScript)\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
