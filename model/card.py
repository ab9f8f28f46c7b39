"""The model card (model.json beside the SavedModel) and the artifact format number."""

FORMAT = 1  # bump when OneStep's signatures change; loaders refuse other formats
