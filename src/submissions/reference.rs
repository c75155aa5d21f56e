//! Reference numbers residents read out on the phone: `K7QM-4XTR-9BZP`.
//!
//! 12 symbols of Crockford's base32 (no I, L, O, U: nothing to confuse) carry 60 random bits, so
//! they cannot be guessed or enumerated; the database's unique index catches the rare collision.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub fn generate() -> String {
    let mut rng = rand::rng();
    let mut reference = String::with_capacity(14);
    for position in 0..12 {
        if position > 0 && position % 4 == 0 {
            reference.push('-');
        }
        reference.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    reference
}

#[cfg(test)]
mod tests {
    #[test]
    fn shape_and_alphabet() {
        let reference = super::generate();
        assert_eq!(reference.len(), 14);
        let groups: Vec<&str> = reference.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [4, 4, 4]
        );
        assert!(
            reference
                .chars()
                .all(|c| c == '-' || super::ALPHABET.contains(&(c as u8)))
        );
        assert_ne!(super::generate(), reference);
    }
}
