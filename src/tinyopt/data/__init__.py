"""tinyopt.data: dataset loaders (IDX, wav folders, CSV sensor logs, .npz, scikit-learn digits) and
seeded train/validation/test splits with the class balance shown."""

from tinyopt.data.csv import load_csv_windows
from tinyopt.data.dataset import Dataset, Splits, check_dataset, split, split_by_group
from tinyopt.data.idx import load_idx, load_mnist
from tinyopt.data.sources import load_digits, load_mnist_dataset, load_npz
from tinyopt.data.wav import load_wav_folder, read_wav

__all__ = ["Dataset", "Splits", "check_dataset", "load_csv_windows", "load_digits", "load_idx", "load_mnist",
           "load_mnist_dataset", "load_npz", "load_wav_folder", "read_wav", "split", "split_by_group"]
