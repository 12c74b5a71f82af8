import torch

# The unit tests use tiny models: one thread is fastest for them, and it keeps a test run
# from fighting other work on a 2-core machine (oversubscribed threads made tiny forward
# passes ~100x slower here).
torch.set_num_threads(1)
