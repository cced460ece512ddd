"""The arena (`python -m core arena`, the Arena page): architectures trained on the same images, with the same budget, over several seeds.

What is held equal, for every model in one arena: the dataset and its training subset (the same images at each
training-set size; smaller sizes are subsets of larger ones), the order the images come in and their augmentation
(both drawn from the seed alone: `core.train.loop.epoch_generator`), the batch size, the image side, the
validation images, and the budget. What is each model's own: its recipe (optimizer, learning rate, weight decay,
warm-up, schedule, label smoothing), registered with the architecture from its paper or reference code and
scaled to the budget (`ScratchSpec.recipe`; the model's docstring says how).

Budgets:
- `epochs:N`  passes over the training images;
- `steps:N`   optimiser steps;
- `flops:F`   training FLOPs (forward + backward, counted by torch's flop counter): steps = F / (FLOPs per image x
              batch), so a cheaper model trains for more steps;
- `seconds:S` wall time on this machine: each model's training rate is measured once (a short timed run at the
              arena's batch size, stored), and steps = S x images/s / batch. The budget becomes a step count, so a
              run is still a deterministic, cached recipe and an interrupted arena resumes where it stopped.

Every run is an ordinary trained run (`core.train.loop.train`): cached by recipe and seed, resumable, and a model
every other page can open. Results are the runs' final validation top-1, as a mean with a 95% confidence interval
over seeds (Student's t), and each run's data digest (a hash of the image indices it trained on, in order), so
"the same images in the same order" is checked, not assumed.
"""
