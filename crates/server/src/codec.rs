//! The protobuf codec of every generated service and client (`build.rs` names it with
//! `codec_path`): prost's, except that a request that does not decode (truncated or garbage
//! bytes, invalid UTF-8 in a string) is the caller's fault and answers INVALID_ARGUMENT naming
//! the message and the field ([`crate::status::undecodable`]), not INTERNAL.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

/// [`ProstCodec`] with precise decode errors.
#[derive(Debug, Clone)]
pub struct Codec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec { _pd: PhantomData }
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = PreciseDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        PreciseDecoder { _pd: PhantomData }
    }
}

/// Decodes a `U`, mapping failures to INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct PreciseDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: Message + Default> Decoder for PreciseDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| crate::status::undecodable(message_name::<U>(), &e))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// `U`'s Rust type name without its module path (`PostOrderRequest`), the proto message's name.
fn message_name<U>() -> &'static str {
    let full = std::any::type_name::<U>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_named_without_its_module_path() {
        assert_eq!(
            message_name::<crate::pb::PostOrderRequest>(),
            "PostOrderRequest"
        );
    }
}
