"""Train a 2-64-64-3 tanh network on the built-in spiral with the lecture's full-batch GD."""

import deltaprop as dp
from deltaprop import datasets

data = datasets.load("spiral", seed=0)
net = dp.Network([2, 64, 64, 3], activation="tanh", seed=0)
history = dp.fit(net, data.X, data.y, optimizer=dp.GradientDescent(0.5), epochs=3000)
print(
    f"{len(history)} steps of θ ← θ − η g: J = {history['objective'][-1]:.4f}, "
    f"training accuracy = {history['accuracy'][-1]:.1%}"
)
