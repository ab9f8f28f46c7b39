"""Training: novels (.txt) → a Keras character RNN → a OneStep SavedModel (see model/).

    python -m train --corpus NOVELS... --out runs/NAME     # train, then export
    python -m train.export runs/NAME                       # export again
    python -m train.evaluate --model DIR FILE...           # nats/char on any text
"""
