"""The model card (model.json beside the SavedModel) and the artifact format number."""

FORMAT = 2  # bump when OneStep's signatures change; loaders refuse other formats
# 2: initial_state takes the novel of every row (int32 [B], 0 = no novel); the card lists "books" and "world".
