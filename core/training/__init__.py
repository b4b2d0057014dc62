"""How a network is trained: the config, the loop and its events, schedule, weight average, augmentation, data, device and budget."""
