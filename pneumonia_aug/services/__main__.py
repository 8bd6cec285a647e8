from pneumonia_aug.services.cli import services

services()
