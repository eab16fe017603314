//! The codec of every generated service and client: prost's, except that a message that
//! does not decode says which field failed in structured metadata
//! ([`UNDECODABLE_FIELD`]), so that the server's edge can answer INVALID_ARGUMENT naming
//! it without reading any status message.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// Metadata on the status of a message that did not decode: the field path prost named
/// (`filing.subject`), or `request` when it named none.
pub const UNDECODABLE_FIELD: &str = "x-mosharekat-undecodable-field";

/// prost's codec, with [`UNDECODABLE_FIELD`] on a decode failure.
#[derive(Debug, Clone)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
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
    type Decoder = FieldDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        FieldDecoder(PhantomData)
    }
}

/// Decodes `U` as prost does; a failure keeps prost's code (INTERNAL, as gRPC's status
/// code guide says of a client) and adds the field path.
#[derive(Debug, Clone)]
pub struct FieldDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for FieldDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| {
            let text = e.to_string();
            let mut s = Status::internal(text.clone());
            if let Ok(v) = decode_error_field(&text).parse() {
                s.metadata_mut().insert(UNDECODABLE_FIELD, v);
            }
            s
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The field path in a prost decode error ("…: Filing.subject: Create….filing: why"),
/// innermost first, as `filing.subject`; `request` when it names none. prost keeps the
/// path in the error but shows it only in its text, which is this crate's own error here.
pub fn decode_error_field(msg: &str) -> String {
    let rest = msg.split_once(": ").map_or("", |(_, r)| r);
    let is_ident = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    let mut fields: Vec<&str> = rest
        .split(": ")
        .map_while(|part| {
            let (message, field) = part.split_once('.')?;
            (is_ident(message) && is_ident(field)).then_some(field)
        })
        .collect();
    if fields.is_empty() {
        return "request".into();
    }
    fields.reverse();
    fields.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_name_their_field() {
        let m = "failed to decode Protobuf message: Filing.subject: CreateFilingRequest.filing: invalid string value: data is not UTF-8 encoded";
        assert_eq!(decode_error_field(m), "filing.subject");
        assert_eq!(
            decode_error_field("failed to decode Protobuf message: invalid varint"),
            "request"
        );
        assert_eq!(
            decode_error_field(
                "failed to decode Protobuf message: GetInstitutionRequest.name: buffer underflow"
            ),
            "name"
        );
    }

    /// prost's own error for a string field that is not UTF-8 names the field.
    #[test]
    fn prosts_error_for_a_bad_string_names_its_field() {
        use crate::registry::v1::GetInstitutionRequest;
        let e = GetInstitutionRequest::decode(&[0x0a, 0x02, 0xff, 0xfe][..]).unwrap_err();
        assert_eq!(decode_error_field(&e.to_string()), "name");
    }
}
