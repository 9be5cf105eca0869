"""torch Dataset view of a StimulusSet (decoding happens in DataLoader workers)."""

from __future__ import annotations

import numpy as np
import torch


class StimulusDataset(torch.utils.data.Dataset):
    """Yields ``(transform(image), index)``; the index is the row position."""

    def __init__(self, stimuli, transform=None) -> None:
        self.stimuli = stimuli
        self.transform = transform

    def __len__(self) -> int:
        return len(self.stimuli)

    def __getitem__(self, index: int):
        img = self.stimuli.load(int(index))
        if self.transform is None:
            x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        else:
            x = self.transform(img)
        return x, int(index)
