from pneumonia_aug.bench.cli import bench

bench(prog_name="python -m pneumonia_aug.bench")
