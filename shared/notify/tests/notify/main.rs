//! The notification crate against real databases (each test on SQLite and PostgreSQL), a
//! real gRPC server and a real SMTP server (`aiosmtpd`, started by the tests).

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Postgres).await } )*
        }
    };
}

mod email;
mod gateway;
mod reminders;
mod storage;
mod support;
