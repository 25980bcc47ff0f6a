# HTTP routes of the R randomForest example: GET /ping and POST /invocations (SageMaker hosting).
#
# The model saved by `train` is loaded once, when `serve` builds the router from this file.

model_path <- "/opt/ml/model/model.rds"

# A model that cannot be loaded stops `serve` at start (exit 1 with the reason on stderr): the
# platform then reports a failed instance at once instead of waiting out the /ping deadline.
load_model <- function(path) {
  if (!file.exists(path)) {
    stop(sprintf("no model at %s: deploy the model.tar.gz written by this example's train", path))
  }
  bundle <- readRDS(path)
  if (!is.list(bundle) || is.null(bundle$model) || is.null(bundle$features)) {
    stop(sprintf("%s is not a model saved by this example's train program", path))
  }
  cat(sprintf("loaded the model from %s (features: %s)\n", path,
              paste(bundle$features, collapse = ",")))
  bundle
}

bundle <- load_model(model_path)

plain <- function(res, status, text, type = "text/plain") {
  res$status <- status
  res$setHeader("Content-Type", type)
  res$body <- text
  res
}

# "text/csv; charset=utf-8" -> "text/csv"
media_type <- function(header) {
  if (is.null(header) || length(header) == 0) {
    return("")
  }
  tolower(trimws(strsplit(header, ";", fixed = TRUE)[[1]][1]))
}

predict_csv <- function(text) {
  features <- bundle$features
  rows <- read.csv(text = text, header = FALSE, stringsAsFactors = FALSE,
                   blank.lines.skip = TRUE, strip.white = TRUE)
  if (ncol(rows) != length(features)) {
    stop(sprintf("each row needs %d values (%s, no header, no target column), got %d",
                 length(features), paste(features, collapse = ","), ncol(rows)))
  }
  non_numeric <- !vapply(rows, is.numeric, logical(1))
  if (any(non_numeric) || anyNA(rows)) {
    stop("every value must be a number")
  }
  names(rows) <- features
  as.character(predict(bundle$model, newdata = rows))
}

#* Health check: the model is loaded before the server listens, so answering means healthy.
#* @get /ping
function(res) {
  plain(res, 200, "")
}

# plumber would parse bodies itself (JSON, forms, text) and answer 500 to a malformed one; this
# parser keeps every body as raw bytes, so the handler below decides between 200, 400 and 415.
# (plumber 1.2.1's own "none" parser cannot be used: its content-type pattern is not a valid regex.)
register_parser("raw_body", function(...) function(value, ...) value, regex = ".*", verbose = FALSE)

#* Predict the class of each CSV row (feature columns in training order, no header).
#* @post /invocations
#* @parser raw_body
function(req, res) {
  content_type <- media_type(req$HTTP_CONTENT_TYPE)
  if (content_type != "text/csv") {
    return(plain(res, 415, sprintf(
      "this model accepts Content-Type text/csv, not '%s'\n", content_type)))
  }
  body <- req$bodyRaw
  text <- if (is.null(body)) "" else tryCatch(rawToChar(body), error = function(e) NULL)
  if (is.null(text)) {
    return(plain(res, 400, "the request body is not text: send CSV rows of numbers\n"))
  }
  if (!nzchar(trimws(text))) {
    return(plain(res, 400, "the request body is empty: send one CSV row of features per line\n"))
  }
  predictions <- tryCatch(predict_csv(text), error = function(e) e)
  if (inherits(predictions, "error")) {
    return(plain(res, 400, paste0(conditionMessage(predictions), "\n")))
  }
  plain(res, 200, paste0(paste(predictions, collapse = "\n"), "\n"), "text/csv")
}
