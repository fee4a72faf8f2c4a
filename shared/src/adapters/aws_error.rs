//! How an AWS call failed, as far as a caller cares: worth trying again (throttled, the
//! service or the network failed) or not (a condition failed, something is missing, the call
//! was refused). Every adapter's error carries one, with its source kept.

use std::error::Error;
use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What went wrong with an AWS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The service asked us to slow down (throttling, provisioned throughput, request limit).
    Throttled,
    /// The service failed (5xx) or could not be reached (timeout, connection, dispatch).
    Unavailable,
    /// A conditional write found its condition false.
    ConditionFailed,
    /// The table, queue, key or item does not exist.
    NotFound,
    /// Any other refusal: invalid request, access denied, a limit of the service.
    Refused,
}

/// An AWS call that failed: how, and the SDK's error.
#[derive(Debug)]
pub struct AwsError {
    failure: Failure,
    code: Option<String>,
    source: Box<dyn Error + Send + Sync>,
}

impl AwsError {
    pub fn failure(&self) -> Failure {
        self.failure
    }

    /// The service's error code (e.g. `AccessDeniedException`), when it answered one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self.failure, Failure::Throttled | Failure::Unavailable)
    }

    /// An SDK builder that refused to build a request (a missing required field).
    pub fn invalid_request(source: impl Error + Send + Sync + 'static) -> Self {
        AwsError {
            failure: Failure::Refused,
            code: None,
            source: Box::new(source),
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The whole chain: the service's message names what was refused (e.g. the action).
        f.write_str(&error_chain(self.source.as_ref()))
    }
}

/// An error and its sources on one line, `outer: cause: root` (the SDK's and reqwest's own
/// messages omit their causes).
pub(crate) fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl Error for AwsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// Classifies an error code the way the AWS SDKs' retry classifiers do.
fn failure_of_code(code: &str) -> Failure {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "ProvisionedThroughputExceededException"
        | "TransactionInProgressException"
        | "RequestLimitExceeded"
        | "RequestThrottled"
        | "PriorRequestNotComplete" => Failure::Throttled,
        "InternalServerError"
        | "InternalFailure"
        | "InternalError"
        | "KMSInternalException"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => Failure::Unavailable,
        "ConditionalCheckFailedException" => Failure::ConditionFailed,
        "ResourceNotFoundException"
        | "NotFoundException"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist" => Failure::NotFound,
        _ => Failure::Refused,
    }
}

impl<E, R> From<SdkError<E, R>> for AwsError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    fn from(err: SdkError<E, R>) -> Self {
        let code = err.code().map(str::to_owned);
        let failure = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Failure::Unavailable,
            SdkError::ResponseError(_) => Failure::Unavailable,
            SdkError::ServiceError(_) => code.as_deref().map_or(Failure::Refused, failure_of_code),
            _ => Failure::Refused,
        };
        AwsError {
            failure,
            code,
            source: Box::new(err),
        }
    }
}

/// `From` the SDK's errors and its request builders' errors for an adapter's error type
/// with a variant holding an [`AwsError`], so `?` maps them: `from_aws_errors!(StoreError,
/// StoreError::Dynamo);`.
macro_rules! from_aws_errors {
    ($error:ty, $variant:path) => {
        impl<E, R> From<aws_smithy_runtime_api::client::result::SdkError<E, R>> for $error
        where
            E: aws_smithy_types::error::metadata::ProvideErrorMetadata
                + std::error::Error
                + Send
                + Sync
                + 'static,
            R: std::fmt::Debug + Send + Sync + 'static,
        {
            fn from(err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Self {
                $variant(err.into())
            }
        }

        impl From<aws_smithy_types::error::operation::BuildError> for $error {
            fn from(err: aws_smithy_types::error::operation::BuildError) -> Self {
                $variant($crate::adapters::aws_error::AwsError::invalid_request(err))
            }
        }
    };
}
pub(crate) use from_aws_errors;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_say_whether_to_try_again() {
        assert_eq!(
            failure_of_code("ProvisionedThroughputExceededException"),
            Failure::Throttled
        );
        assert_eq!(failure_of_code("ThrottlingException"), Failure::Throttled);
        assert_eq!(failure_of_code("InternalServerError"), Failure::Unavailable);
        assert_eq!(
            failure_of_code("ServiceUnavailableException"),
            Failure::Unavailable
        );
        assert_eq!(
            failure_of_code("ConditionalCheckFailedException"),
            Failure::ConditionFailed
        );
        assert_eq!(
            failure_of_code("ResourceNotFoundException"),
            Failure::NotFound
        );
        assert_eq!(failure_of_code("AccessDeniedException"), Failure::Refused);
        assert_eq!(failure_of_code("ValidationException"), Failure::Refused);
    }

    #[test]
    fn only_throttling_and_outages_are_retryable() {
        let error = |failure| AwsError {
            failure,
            code: None,
            source: "x".into(),
        };
        assert!(error(Failure::Throttled).is_retryable());
        assert!(error(Failure::Unavailable).is_retryable());
        assert!(!error(Failure::ConditionFailed).is_retryable());
        assert!(!error(Failure::NotFound).is_retryable());
        assert!(!error(Failure::Refused).is_retryable());
    }
}
