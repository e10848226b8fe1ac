"""Training-side tooling (torch, transformers, optimum): building, fine-tuning and exporting refining models.

Never imported by the inference path: workers only need onnxruntime and numpy.
"""
