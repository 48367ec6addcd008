//! `forward_reactor!`: the `Reactor` methods a test's wrapper backend does not change, passed
//! to the wrapped reactor, so each wrapper writes only what it plants or records.

/// Inside `impl Reactor for Wrapper`, forwards the named methods to the field (or tuple index)
/// `$inner`: `forward_reactor!(inner; waker, mechanism, hints, name);`.
#[macro_export]
macro_rules! forward_reactor {
    ($inner:tt; $($method:ident),* $(,)?) => {
        $( $crate::forward_reactor!(@one $inner $method); )*
    };
    (@one $inner:tt register) => {
        unsafe fn register(
            &self,
            source: portable_reactor::BorrowedSource<'_>,
            id: portable_reactor::EventId,
            interest: portable_reactor::Interest,
            mode: portable_reactor::Mode,
        ) -> std::io::Result<()> {
            // SAFETY: forwarded with the caller's guarantees unchanged.
            unsafe { self.$inner.register(source, id, interest, mode) }
        }
    };
    (@one $inner:tt reregister) => {
        fn reregister(
            &self,
            source: portable_reactor::BorrowedSource<'_>,
            id: portable_reactor::EventId,
            interest: portable_reactor::Interest,
            mode: portable_reactor::Mode,
        ) -> std::io::Result<()> {
            self.$inner.reregister(source, id, interest, mode)
        }
    };
    (@one $inner:tt deregister) => {
        fn deregister(&self, source: portable_reactor::BorrowedSource<'_>) -> std::io::Result<()> {
            self.$inner.deregister(source)
        }
    };
    (@one $inner:tt poll) => {
        fn poll(
            &self,
            events: &mut portable_reactor::Events,
            timeout: Option<std::time::Duration>,
        ) -> std::io::Result<usize> {
            self.$inner.poll(events, timeout)
        }
    };
    (@one $inner:tt waker) => {
        fn waker(&self) -> portable_reactor::Waker {
            self.$inner.waker()
        }
    };
    (@one $inner:tt mechanism) => {
        fn mechanism(&self) -> portable_reactor::Mechanism {
            self.$inner.mechanism()
        }
    };
    (@one $inner:tt supports) => {
        fn supports(&self, mode: portable_reactor::Mode) -> bool {
            self.$inner.supports(mode)
        }
    };
    (@one $inner:tt hints) => {
        fn hints(&self) -> portable_reactor::Hints {
            self.$inner.hints()
        }
    };
    (@one $inner:tt name) => {
        fn name(&self) -> &'static str {
            self.$inner.name()
        }
    };
}
