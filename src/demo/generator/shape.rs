//! The shape of a document: direction, class and number of exchange lines,
//! drawn from their own stream so the line budget can be planned ahead.

use super::rng::SplitMix64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Signed,
    MissingSignature,
    LateSignature,
    Paper,
    Secret,
}

pub(super) const CLASS_MIX: [(Class, u32); 5] = [
    (Class::Signed, 800),
    (Class::MissingSignature, 80),
    (Class::LateSignature, 30),
    (Class::Paper, 60),
    (Class::Secret, 30),
];

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LineNoise {
    pub(super) duplicate: bool,
    pub(super) bad: bool,
}

/// The choices that decide how many exchange lines a document takes, drawn from their own stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) outgoing: bool,
    pub(super) class: Class,
    pub(super) copies: usize,
    pub(super) noise: [LineNoise; 4],
}

impl Shape {
    pub(super) fn draw(rng: &mut SplitMix64, noise: bool) -> Self {
        let outgoing = rng.chance(0.45);
        let class = rng.weighted(&CLASS_MIX);
        let copies = if outgoing {
            rng.weighted(&[(1, 35), (2, 30), (3, 20), (4, 15)])
        } else if rng.chance(0.1) {
            2
        } else {
            1
        };
        let mut line_noise = [LineNoise::default(); 4];
        if noise {
            for line in line_noise.iter_mut().take(copies) {
                line.duplicate = rng.chance(0.002);
                line.bad = rng.chance(0.003);
            }
        }
        Shape {
            outgoing,
            class,
            copies,
            noise: line_noise,
        }
    }

    pub(super) fn exchange_lines(&self) -> usize {
        let extra: usize = self.noise[..self.copies]
            .iter()
            .map(|n| usize::from(n.duplicate) + usize::from(n.bad))
            .sum();
        self.copies + extra
    }
}
