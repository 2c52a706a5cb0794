import time
from model.train import TrainConfig, train
def test_probe():
    for i in range(3):
        t=time.time()
        train(TrainConfig(train_shards=["/tmp/tt/train.bin"], val_shards=["/tmp/tt/val.bin"], out_dir="/tmp/tt/run7", block_size=32, batch_size=8, max_steps=20, lr=3e-3, warmup_steps=3, eval_interval=10, eval_batches=2, log_interval=1, checkpoint_interval=5))
        print(time.time()-t)
