"""Models: a reference classified (reference.py), built by the one factory (registry.py), answering through one
wrapper (wrapper.py). Scratch architectures: spec.py, scratch.py, inception.py; pretrained adapters: pretrained.py
(Hugging Face), torchvision_models.py, timm_models.py; trained runs: trained.py, weights.py."""
