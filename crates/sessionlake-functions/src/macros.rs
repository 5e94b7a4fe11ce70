//! `make_udaf_function!`: the shared singleton getter and the fluent `expr_fn` builder of an
//! aggregate function, so each function file declares only its `AggregateUDFImpl`.

/// Declares `$getter() -> Arc<AggregateUDF>` (one shared instance built from
/// `<$udaf_type>::default()`) and `$expr_fn(args...) -> Expr` calling it.
///
/// ```ignore
/// make_udaf_function!(Uniques, uniques_udaf, uniques, user);
/// ```
#[macro_export]
macro_rules! make_udaf_function {
    ($udaf_type:ty, $getter:ident, $expr_fn:ident $(, $arg:ident)*) => {
        #[doc = concat!("The `", stringify!($udaf_type), "` aggregate function, as a shared [`datafusion::logical_expr::AggregateUDF`].")]
        pub fn $getter() -> ::std::sync::Arc<::datafusion::logical_expr::AggregateUDF> {
            static INSTANCE: ::std::sync::LazyLock<
                ::std::sync::Arc<::datafusion::logical_expr::AggregateUDF>,
            > = ::std::sync::LazyLock::new(|| {
                ::std::sync::Arc::new(::datafusion::logical_expr::AggregateUDF::from(
                    <$udaf_type>::default(),
                ))
            });
            ::std::sync::Arc::clone(&INSTANCE)
        }

        #[doc = concat!("An expression calling [`", stringify!($getter), "`].")]
        pub fn $expr_fn($($arg: ::datafusion::logical_expr::Expr),*) -> ::datafusion::logical_expr::Expr {
            $getter().call(vec![$($arg),*])
        }
    };
}
