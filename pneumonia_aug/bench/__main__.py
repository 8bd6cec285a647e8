from pneumonia_aug.bench.run import bench

bench()
