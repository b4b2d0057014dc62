"""What happens to runs: the run store, the queue and its worker processes, reference files, comparison, limits and the class board."""
