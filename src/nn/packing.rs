//! A padded batch computed without its padding: the real tokens of every sequence, one sequence after
//! another, as the rows of one [Σ lengths, hidden] matrix.
//!
//! Padding is work for nothing: every linear layer, layer norm and activation runs over it, and
//! attention over the square of it. Random batches, PyTorch's default, carry about 2.5 times their real
//! tokens at 128 tokens. Packed, the position-wise layers see real tokens only, and attention runs
//! within each sequence over its own tokens, so nothing is masked. The real positions' values are
//! the same as the padded computation's (each position's layers see only its own row, and attention
//! within a sequence never saw the padding's keys); the padding's rows come back as zeros.

use candle_core::{DType, Result, Tensor};

/// The layout of one batch: each sequence's length, out of `seq` padded positions.
pub struct Packing {
    pub lengths: Vec<usize>,
    seq: usize,
}

impl Packing {
    /// From a 0/1 attention mask [batch, seq]. None unless each row is ones then zeros with at least
    /// one token, the tokenizer's right padding: any other mask takes the padded path.
    pub fn of(mask: &Tensor) -> Result<Option<Packing>> {
        let (_, seq) = mask.dims2()?;
        let rows = mask.to_dtype(DType::U32)?.to_vec2::<u32>()?;
        let mut lengths = Vec::with_capacity(rows.len());
        for row in &rows {
            let len = row.iter().take_while(|&&m| m == 1).count();
            if len == 0 || row[len..].iter().any(|&m| m != 0) {
                return Ok(None);
            }
            lengths.push(len);
        }
        Ok(Some(Packing { lengths, seq }))
    }

    /// Whether any sequence is shorter than the batch's padded length.
    pub fn has_padding(&self) -> bool {
        self.lengths.iter().any(|&l| l < self.seq)
    }

    /// Tokens in all: the packed matrix's rows.
    pub fn tokens(&self) -> usize {
        self.lengths.iter().sum()
    }

    /// The real tokens of `ids` [batch, seq] and their positions, both [Σ lengths] (u32).
    pub fn pack_ids(&self, ids: &Tensor) -> Result<(Tensor, Tensor)> {
        let rows = ids.to_dtype(DType::U32)?.to_vec2::<u32>()?;
        let mut packed = Vec::with_capacity(self.tokens());
        let mut positions = Vec::with_capacity(self.tokens());
        for (row, &len) in rows.iter().zip(&self.lengths) {
            packed.extend_from_slice(&row[..len]);
            positions.extend(0..len as u32);
        }
        let n = packed.len();
        Ok((Tensor::from_vec(packed, n, ids.device())?, Tensor::from_vec(positions, n, ids.device())?))
    }

    /// Packed rows [Σ lengths, hidden] back to [batch, seq, hidden], zeros at the padding.
    pub fn unpack(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h) = x.dims2()?;
        let batch = self.lengths.len();
        if !self.has_padding() {
            return x.reshape((batch, self.seq, h));
        }
        // Row n, appended, is the zero row every padded position reads.
        let with_zero = Tensor::cat(&[x, &Tensor::zeros((1, h), x.dtype(), x.device())?], 0)?;
        let mut index = Vec::with_capacity(batch * self.seq);
        let mut start = 0;
        for &len in &self.lengths {
            index.extend((start..start + len).map(|r| r as u32));
            index.extend(std::iter::repeat_n(n as u32, self.seq - len));
            start += len;
        }
        let index = Tensor::from_vec(index, batch * self.seq, x.device())?;
        with_zero.index_select(&index, 0)?.reshape((batch, self.seq, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn mask(rows: &[&[u32]]) -> Tensor {
        let t = rows[0].len();
        Tensor::from_vec(rows.concat(), (rows.len(), t), &Device::Cpu).unwrap()
    }

    #[test]
    fn only_right_padded_masks_with_a_token_in_every_row_are_packed() {
        let p = Packing::of(&mask(&[&[1, 1, 1], &[1, 0, 0]])).unwrap().unwrap();
        assert_eq!(p.lengths, vec![3, 1]);
        assert!(p.has_padding());
        assert!(!Packing::of(&mask(&[&[1, 1], &[1, 1]])).unwrap().unwrap().has_padding());
        assert!(Packing::of(&mask(&[&[1, 0, 1], &[1, 1, 1]])).unwrap().is_none(), "a hole");
        assert!(Packing::of(&mask(&[&[0, 1, 1], &[1, 1, 1]])).unwrap().is_none(), "left padding");
        assert!(Packing::of(&mask(&[&[0, 0, 0], &[1, 1, 1]])).unwrap().is_none(), "an empty row");
    }

    #[test]
    fn packing_then_unpacking_keeps_the_real_positions_and_zeroes_the_padding() {
        let dev = Device::Cpu;
        let p = Packing::of(&mask(&[&[1, 1, 0], &[1, 1, 1], &[1, 0, 0]])).unwrap().unwrap();
        let ids = Tensor::from_vec(vec![5u32, 6, 0, 7, 8, 9, 10, 0, 0], (3, 3), &dev).unwrap();
        let (packed, positions) = p.pack_ids(&ids).unwrap();
        assert_eq!(packed.to_vec1::<u32>().unwrap(), vec![5, 6, 7, 8, 9, 10]);
        assert_eq!(positions.to_vec1::<u32>().unwrap(), vec![0, 1, 0, 1, 2, 0]);
        let rows = Tensor::from_vec((1..=12).map(|v| v as f32).collect::<Vec<_>>(), (6, 2), &dev).unwrap();
        let back = p.unpack(&rows).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(back[0], vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![0.0, 0.0]]);
        assert_eq!(back[1], vec![vec![5.0, 6.0], vec![7.0, 8.0], vec![9.0, 10.0]]);
        assert_eq!(back[2], vec![vec![11.0, 12.0], vec![0.0, 0.0], vec![0.0, 0.0]]);
    }
}
