//! The AdminService methods the sandbox does not serve (projects, domains, attributes, events,
//! ...): each answers UNIMPLEMENTED, naming the method. The expansion's `Request`, `Response`,
//! `Status` and `admin::` resolve where it is called, inside the `AdminService` impl.

macro_rules! unimplemented_methods {
    ($($method:ident($req:ident) -> $resp:ident = $name:literal;)*) => {
        $(
            // Spelled as `#[async_trait]` expands an `async fn`: attribute macros see this macro
            // call unexpanded, so it must produce the desugared signature itself.
            fn $method<'life0, 'async_trait>(
                &'life0 self,
                _request: Request<admin::$req>,
            ) -> ::std::pin::Pin<Box<
                dyn ::std::future::Future<Output = Result<Response<admin::$resp>, Status>> + Send + 'async_trait,
            >>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async move {
                    Err(Status::unimplemented(concat!(
                        "flyteidl.service.AdminService/", $name, " is not implemented by the union sandbox"
                    )))
                })
            }
        )*
    };
}
